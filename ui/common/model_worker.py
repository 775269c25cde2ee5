"""A tab's own engine thread: one model loaded at a time, jobs run off the GUI thread, failures described.

The worker only emits signals; they reach GUI-thread ``@Slot`` methods of the tab (see ui/common/bridge.py).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal

from playground.domain.jobs import Cancel, ProgressEvent
from playground.errors import KnownError

Loader = Callable[[str, Callable[[ProgressEvent], None]], Any]


def describe_failure(exc: BaseException) -> tuple[str, bool]:
    """(message, is_bug): one line for a problem the user can act on, the traceback for a bug."""
    if isinstance(exc, KnownError):
        return str(exc), False
    text = "".join(traceback.format_exception(exc))
    return f"{type(exc).__name__}: {exc}\n\n{text}", True


class ModelWorker(QObject):
    status = Signal(str)  # loading progress

    def __init__(self, loader: Loader, thread_name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._loader = loader
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._model: Any = None  # touched only on the worker thread
        self._cancel: Cancel | None = None
        self._closed = False

    def _new_cancel(self) -> Cancel:
        self._cancel = Cancel()
        return self._cancel

    def stop(self) -> None:
        """Stop the running job at its next step; what it produced so far stays."""
        if self._cancel is not None:
            self._cancel.set()

    def shutdown(self) -> None:
        """Stop, join the worker thread, free the model. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)
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
