"""A tab's own engine thread: jobs run off the GUI thread, their outcome comes back on it, failures described.

``Worker`` owns a one-thread pool and the current job's ``Cancel``. ``submit`` relays a job's outcome through a
queued signal, so it reaches the GUI thread after every signal the job emitted before it (a token, a cell), even
when the future has already finished by the time ``submit`` returns. ``ModelWorker`` adds one loaded model.
The worker only emits signals; they reach GUI-thread ``@Slot`` methods of the tab (see ui/common/bridge.py).
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from playground.domain.jobs import Cancel, ProgressEvent
from playground.errors import KnownError

Loader = Callable[[str, Callable[[ProgressEvent], None]], Any]
Outcome = Callable[[Any], None]  # called on the GUI thread with the job's result
Failure = Callable[[str, bool], None]  # called on the GUI thread with (message, is_bug)


def describe_failure(exc: BaseException) -> tuple[str, bool]:
    """(message, is_bug): one line for a problem the user can act on, the traceback for a bug."""
    if isinstance(exc, KnownError):
        return str(exc), False
    text = "".join(traceback.format_exception(exc))
    return f"{type(exc).__name__}: {exc}\n\n{text}", True


class Worker(QObject):
    status = Signal(str)  # loading progress
    _relay = Signal(object, object, object)  # (future, on_result, on_failure), queued to the GUI thread

    def __init__(self, thread_name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._cancel: Cancel | None = None
        self._closed = False
        self._relay.connect(self._on_relay, Qt.ConnectionType.QueuedConnection)

    def submit(self, job: Callable[[], Any], on_result: Outcome | None = None,
               on_failure: Failure | None = None) -> Future:
        """Run ``job`` on the worker thread; ``on_result(result)`` or ``on_failure(message, is_bug)`` follows on the
        GUI thread, after everything the job emitted. A job cancelled before it started fails with a message."""
        future = self._pool.submit(job)
        future.add_done_callback(lambda f: self._relay_outcome(f, on_result, on_failure))
        return future

    def _relay_outcome(self, f: Future, on_result: Outcome | None, on_failure: Failure | None) -> None:
        with contextlib.suppress(RuntimeError):  # the tab (and this worker) was deleted while the job ran
            self._relay.emit(f, on_result, on_failure)

    @Slot(object, object, object)
    def _on_relay(self, f: Future, on_result: Outcome | None, on_failure: Failure | None) -> None:
        if f.cancelled():
            if on_failure is not None:
                on_failure("Cancelled before it started", False)
            return
        exc = f.exception()
        if exc is None:
            if on_result is not None:
                on_result(f.result())
        elif on_failure is not None:
            on_failure(*describe_failure(exc))

    def new_cancel(self) -> Cancel:
        """A fresh cancel flag for the next job (``stop`` sets the latest one)."""
        self._cancel = Cancel()
        return self._cancel

    def stop(self) -> None:
        """Stop the running job at its next step; what it produced so far stays."""
        if self._cancel is not None:
            self._cancel.set()

    def shutdown(self) -> None:
        """Stop, join the worker thread, free what it holds. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._release()

    def _release(self) -> None:
        """Free models after the thread has stopped (subclasses)."""


class ModelWorker(Worker):
    """A worker with one model loaded at a time (by id), loaded on the worker thread."""

    def __init__(self, loader: Loader, thread_name: str, parent: QObject | None = None) -> None:
        super().__init__(thread_name, parent)
        self._loader = loader
        self._model: Any = None  # touched only on the worker thread

    def _release(self) -> None:
        if self._model is not None:
            self._model.unload()
            self._model = None

    def _ensure(self, model_id: str) -> Any:
        """The model for ``model_id``, loading it (after freeing the previous one) when needed."""
        if self._model is None or self._model.id != model_id:
            if self._model is not None:
                self._model.unload()  # one model at a time per tab
                self._model = None
            self._model = self._loader(model_id, lambda e: self.status.emit(e.stage))
            self.status.emit(f"Loaded {model_id}")
            self._on_model_loaded(self._model)
        return self._model

    def _on_model_loaded(self, model: Any) -> None:
        """Hook for subclasses (worker thread: emit signals only)."""
