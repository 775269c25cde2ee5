"""The Image tab's own engine thread: keeps one pipeline loaded and runs image jobs off the GUI thread.

Same seam as ``ui/sheet/worker.py``: a one-thread pool; the worker only emits signals, which reach GUI-thread
``@Slot`` methods of the tab.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from playground.domain.image import ImageRequest, ImageResult
from playground.domain.jobs import ProgressEvent
from ui.common.model_worker import ModelWorker, describe_failure

if TYPE_CHECKING:
    from playground.engine.image import ImageModel

Loader = Callable[[str, Callable[[ProgressEvent], None]], "ImageModel"]


def default_loader(device: str | None = None, dtype: str | None = None) -> Loader:
    """Load through the image engine (the demo model, a folder/file, the registry or the HF cache)."""
    def load(model_id: str, on_progress: Callable[[ProgressEvent], None]) -> ImageModel:
        from playground.runtime.dispatch import load_image_model

        return load_image_model(model_id, device=device, dtype=dtype, on_progress=on_progress)

    return load


class ImageWorker(ModelWorker):
    step = Signal(object)  # StepEvent, emitted on the worker thread, queued to the GUI
    finished = Signal(object)  # ImageResult
    failed = Signal(str, bool)  # message, is_bug
    loaded = Signal(object)  # the ImageModel now loaded (the tab reads its defaults, demo flag, schedulers)

    def __init__(self, loader: Loader | None = None, parent: QObject | None = None) -> None:
        super().__init__(loader or default_loader(), "engine-image", parent)

    def load(self, model_id: str) -> Future:
        """Load ``model_id`` now (so the tab can show its defaults before the first run)."""
        future = self._pool.submit(self._ensure, model_id)
        future.add_done_callback(self._load_done)
        return future

    def generate(self, model_id: str, request: ImageRequest) -> Future:
        """Run ``request``; steps arrive on ``step``, then ``finished`` (or ``failed``)."""
        from playground.runtime.dispatch import generate_image

        cancel = self._new_cancel()

        def job() -> ImageResult:
            return generate_image(self._ensure(model_id), request, self.step.emit, cancel)

        future = self._pool.submit(job)
        future.add_done_callback(self._done)
        return future

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
        self.failed.emit(*describe_failure(exc))

    def _on_model_loaded(self, model: ImageModel) -> None:
        self.loaded.emit(model)
