"""The Image tab's own engine thread: keeps one pipeline loaded and runs image jobs off the GUI thread.

The worker base (ui/common/worker.py) runs the jobs and relays their outcome to the GUI thread after the last step.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from playground.domain.image import ImageRequest, ImageResult
from playground.domain.jobs import ProgressEvent
from ui.common.worker import ModelWorker

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
        return self.submit(lambda: self._ensure(model_id), None, self.failed.emit)

    def generate(self, model_id: str, request: ImageRequest) -> Future:
        """Run ``request``; steps arrive on ``step``, then ``finished`` (or ``failed``)."""
        from playground.runtime.dispatch import generate_image

        cancel = self.new_cancel()

        def job() -> ImageResult:
            return generate_image(self._ensure(model_id), request, self.step.emit, cancel)

        return self.submit(job, self.finished.emit, self.failed.emit)

    def _on_model_loaded(self, model: ImageModel) -> None:
        self.loaded.emit(model)
