"""Asking servers for their models off the GUI thread: every endpoint's list for the model pickers, or one
unsaved endpoint's for "Test connection".

Same seam as the engine workers: a thread pool runs the network call, a queued signal brings the answer to
GUI-thread ``@Slot`` methods. Shutting down never waits for a server: a call in flight ends by its timeout.
"""

from __future__ import annotations

import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal

from playground.errors import KnownError

PROBE_TIMEOUT_S = 10.0  # a model list is small: a server that takes longer is effectively down


class RemoteModels(QObject):
    listed = Signal(object)  # {endpoint name: [remote ids] | error message}, for every saved endpoint
    probed = Signal(int, object)  # probe id, [model names] | error message

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="remote-models")
        self._closed = False
        self._probes = 0

    def refresh(self) -> Future | None:
        """List every saved endpoint's models; the answer comes on ``listed``. None when there is no endpoint."""
        from playground.models.endpoints import EndpointStore

        if self._closed or not EndpointStore().list():
            return None
        future = self._pool.submit(_list_all)
        future.add_done_callback(lambda f: self.listed.emit(_outcome(f)))
        return future

    def probe(self, base_url: str, api_key: str | None, name: str = "") -> int:
        """Ask one (maybe unsaved) server for its models; the answer comes on ``probed`` with the returned id."""
        self._probes += 1
        probe_id = self._probes
        if self._closed:
            return probe_id
        future = self._pool.submit(_probe, base_url, api_key, name)
        future.add_done_callback(lambda f: self.probed.emit(probe_id, _outcome(f)))
        return probe_id

    def shutdown(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)


def _list_all() -> dict[str, list[str] | str]:
    from playground.remote.backend import list_remote_models

    return list_remote_models()


def _probe(base_url: str, api_key: str | None, name: str) -> list[str]:
    from playground.models.endpoints import normalise_url
    from playground.remote.client import RemoteClient

    client = RemoteClient(normalise_url(base_url), api_key, name=name or "", read_timeout=PROBE_TIMEOUT_S,
                          connect_timeout=PROBE_TIMEOUT_S, retries=0)
    return [m.id for m in client.list_models()]


def _outcome(f: Future) -> Any:
    """The result, or the error as one line (a bug gets its type name: this is a status line, not a crash)."""
    if f.cancelled():
        return "cancelled"
    exc = f.exception()
    if exc is None:
        return f.result()
    if isinstance(exc, KnownError):
        return str(exc)
    traceback.print_exception(exc)  # a bug: the traceback for the log, one line for the dialog
    return f"Internal error: {type(exc).__name__}: {exc}"
