"""The Image tab's own engine thread: keeps one pipeline loaded and runs image jobs off the GUI thread.

Same seam as ``ui/sheet_worker.py``: a one-thread pool; the worker only emits signals, which reach GUI-thread
``@Slot`` methods of the tab.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from playground.domain import ProgressEvent
from playground.engine.generate import Cancel
from playground.errors import KnownError
from playground.image_domain import ImageRequest, ImageResult

if TYPE_CHECKING:
    from playground.engine.image import ImageModel

Loader = Callable[[str, Callable[[ProgressEvent], None]], "ImageModel"]


def default_loader(device: str | None = None, dtype: str | None = None) -> Loader:
    """Load through the image engine (the demo model, a folder/file, the registry or the HF cache)."""
    def load(model_id: str, on_progress: Callable[[ProgressEvent], None]) -> ImageModel:
        from playground.engine.image import load_image_model

        return load_image_model(model_id, device=device, dtype=dtype, on_progress=on_progress)

    return load


class ImageWorker(QObject):
    step = Signal(object)  # StepEvent, emitted on the worker thread, queued to the GUI
    finished = Signal(object)  # ImageResult
    failed = Signal(str, bool)  # message, is_bug
    status = Signal(str)  # loading progress
    loaded = Signal(object)  # the ImageModel now loaded (the tab reads its defaults, demo flag, schedulers)

    def __init__(self, loader: Loader | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._loader = loader or default_loader()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-image")
        self._model: ImageModel | None = None  # touched only on the worker thread
        self._cancel: Cancel | None = None
        self._closed = False

    def load(self, model_id: str) -> Future:
        """Load ``model_id`` now (so the tab can show its defaults before the first run)."""
        future = self._pool.submit(self._ensure, model_id)
        future.add_done_callback(self._load_done)
        return future

    def generate(self, model_id: str, request: ImageRequest) -> Future:
        """Run ``request``; steps arrive on ``step``, then ``finished`` (or ``failed``)."""
        from playground.engine.image import generate

        self._cancel = cancel = Cancel()

        def job() -> ImageResult:
            return generate(self._ensure(model_id), request, self.step.emit, cancel)

        future = self._pool.submit(job)
        future.add_done_callback(self._done)
        return future

    def stop(self) -> None:
        """Stop the running job after the current denoising step."""
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

    def _ensure(self, model_id: str) -> ImageModel:
        if self._model is None or self._model.id != model_id:
            if self._model is not None:
                self._model.unload()
                self._model = None
            self._model = self._loader(model_id, lambda e: self.status.emit(e.stage))
            self.status.emit(f"Loaded {model_id}")
            self.loaded.emit(self._model)
        return self._model

    def _load_done(self, f: Future) -> None:  # worker thread: only emit signals
        if not f.cancelled() and f.exception() is not None:
            self._report(f.exception())

    def _done(self, f: Future) -> None:  # worker thread: only emit signals
        if f.cancelled():
            self.failed.emit("Cancelled before it started", False)
            return
        exc = f.exception()
        if exc is None:
            self.finished.emit(f.result())
        else:
            self._report(exc)

    def _report(self, exc: BaseException) -> None:
        if isinstance(exc, KnownError | ValueError):
            self.failed.emit(str(exc), False)
        else:
            text = "".join(traceback.format_exception(exc))
            self.failed.emit(f"{type(exc).__name__}: {exc}\n\n{text}", True)
