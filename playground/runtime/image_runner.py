"""The image engine's own worker thread and its one loaded model (the device does one image job at a time)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from playground.domain.image import ImageRequest, ImageResult, StepEvent
from playground.domain.jobs import Cancel, ProgressEvent
from playground.runtime.dispatch import generate_image, load_image_model

StepFn = Callable[[StepEvent], None]
ProgressFn = Callable[[ProgressEvent], None]


class ImageModels:
    """Keeps one image model loaded (by id); loading another frees the first. Use from one thread."""

    def __init__(self, device: str | None = None, dtype: str | None = None, allow_pickle: bool = False) -> None:
        self.device, self.dtype, self.allow_pickle = device, dtype, allow_pickle
        self.model: Any = None

    def get(self, model_id: str, on_progress: ProgressFn = lambda e: None) -> Any:
        if self.model is None or self.model.id != model_id:
            self.unload()
            self.model = load_image_model(model_id, device=self.device, dtype=self.dtype,
                                          allow_pickle=self.allow_pickle, on_progress=on_progress)
        return self.model

    def unload(self) -> None:
        if self.model is not None:
            self.model.unload()
            self.model = None


class ImageRunner:
    """One worker thread for image jobs (the device does one at a time): ``generate() -> Future[ImageResult]``."""

    def __init__(self, device: str | None = None, dtype: str | None = None, allow_pickle: bool = False,
                 thread_name_prefix: str = "engine-image") -> None:
        self.models = ImageModels(device, dtype, allow_pickle)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name_prefix)
        self._lock = threading.Lock()

    def generate(self, model_id: str, request: ImageRequest, on_event: StepFn = lambda e: None,
                 cancel: Cancel | None = None, on_progress: ProgressFn = lambda e: None) -> Future[ImageResult]:
        def job() -> ImageResult:
            return generate_image(self.models.get(model_id, on_progress), request, on_event, cancel)

        return self._pool.submit(job)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
        if wait:
            self.models.unload()
