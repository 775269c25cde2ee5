"""The Sheet tab's own engine thread: loads a model (cached by id) and runs SheetFiller jobs off the GUI thread.

Same seam as ``ui/bridge.py``: futures on a one-thread pool; the worker only emits signals, and the signals
reach GUI-thread ``@Slot`` methods of the tab. A job is a tag ("fill" or "eval") so the tab knows which run
an answer belongs to.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from playground.domain import ProgressEvent
from playground.engine.generate import Cancel
from playground.errors import KnownError
from playground.tasks.sheet import CellPrompt

if TYPE_CHECKING:
    from playground.engine.fill import FillResult
    from playground.engine.text import TextModel

Loader = Callable[[str, Callable[[ProgressEvent], None]], "TextModel"]


def default_loader(device: str | None = None, dtype: str | None = None) -> Loader:
    """Load through the registry (converting or downloading on first use), as the main runner does."""
    def load(model_id: str, on_progress: Callable[[ProgressEvent], None]) -> TextModel:
        from playground.engine.text import load_text_model
        from playground.models.registry import Registry

        resolved = Registry().resolve(model_id, on_progress)
        on_progress(ProgressEvent(f"Loading {model_id} for the sheet", None))
        return load_text_model(model_id, resolved.folder, device, dtype)

    return load


class SheetWorker(QObject):
    cell = Signal(str, object)  # tag, CellAnswer: emitted on the worker thread, queued to the GUI
    finished = Signal(str, object)  # tag, FillResult
    failed = Signal(str, str, bool)  # tag, message, is_bug
    status = Signal(str)  # loading progress

    def __init__(self, loader: Loader | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._loader = loader or default_loader()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-sheet")
        self._model: TextModel | None = None  # touched only on the worker thread
        self._cancel: Cancel | None = None
        self._closed = False

    def fill(self, tag: str, model_id: str, prompts: Sequence[CellPrompt], numeric_columns: Sequence[int],
             max_new_tokens: int, batch_size: int = 8) -> Future:
        """Complete ``prompts`` with ``model_id`` on the worker; answers arrive on ``cell``, then ``finished``."""
        self._cancel = cancel = Cancel()
        prompts = list(prompts)

        def job() -> FillResult:
            from playground.engine.fill import SheetFiller

            tm = self._ensure(model_id)
            filler = SheetFiller(tm, batch_size=batch_size, max_new_tokens=max_new_tokens)
            return filler.fill(prompts, lambda a: self.cell.emit(tag, a), cancel, numeric_columns)

        future = self._pool.submit(job)
        future.add_done_callback(lambda f: self._done(tag, f))
        return future

    def stop(self) -> None:
        """Stop the running job after the current decoding step; cells already answered stay."""
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

    def _ensure(self, model_id: str) -> TextModel:
        if self._model is None or self._model.id != model_id:
            if self._model is not None:
                self._model.unload()  # one model at a time: the sheet's copy must not double memory twice
                self._model = None
            self._model = self._loader(model_id, lambda e: self.status.emit(e.stage))
            self.status.emit(f"Loaded {model_id}")
        return self._model

    def _done(self, tag: str, f: Future) -> None:  # runs on the worker thread: only emit signals here
        if f.cancelled():
            self.failed.emit(tag, "Cancelled before it started", False)
            return
        exc = f.exception()
        if exc is None:
            self.finished.emit(tag, f.result())
        elif isinstance(exc, KnownError):
            self.failed.emit(tag, str(exc), False)
        else:
            text = "".join(traceback.format_exception(exc))
            self.failed.emit(tag, f"{type(exc).__name__}: {exc}\n\n{text}", True)
