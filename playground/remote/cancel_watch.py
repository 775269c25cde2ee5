"""Closing a remote request's connection when its Cancel is set or its deadline passes."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

from playground.domain.jobs import Cancel

CANCEL_POLL_S = 0.05  # how soon a set Cancel closes the connection


class CancelWatch:
    """Calls ``on_cancel`` once, within CANCEL_POLL_S, when ``cancel`` is set or ``deadline_s`` has passed
    (``expired`` then) before ``stop()``.

    Polling: ``Cancel`` (owned by the generation loop) has no callback hook, and a poll every 50 ms costs nothing.
    """

    def __init__(self, cancel: Cancel, on_cancel: Callable[[], None], deadline_s: float) -> None:
        self._cancel = cancel
        self._on_cancel = on_cancel
        self._deadline = time.monotonic() + deadline_s
        self.expired = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="remote-cancel-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(CANCEL_POLL_S):
            if time.monotonic() > self._deadline:
                self.expired = True
            if self._cancel.is_set() or self.expired:
                self._on_cancel()
                return

    def stop(self) -> None:
        self._done.set()


def shutdown_sockets(sockets: list[socket.socket]) -> None:
    """Shut the connection down: a read blocked in another thread returns at once (close() alone would not)."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def wait_or_cancel(seconds: float, cancel: Cancel | None) -> bool:
    """Sleep ``seconds``; True when cancelled meanwhile."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if cancel is not None and cancel.is_set():
            return True
        time.sleep(min(left, CANCEL_POLL_S))
    return bool(cancel is not None and cancel.is_set())
