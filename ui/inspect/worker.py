"""The Inspect tab's own engine thread: the chosen model loaded a second time with eager attention (the Prompt
tab's engine keeps its fast path), and the inspect, lens and probe jobs run on it off the GUI thread."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from playground.domain.inspect import Inspection, InspectRequest
from playground.domain.jobs import ProgressEvent
from playground.tasks.probe import ProbeRequest, engine_scorer, run_probe
from ui.common.worker import ModelWorker

if TYPE_CHECKING:
    from playground.engine.text import TextModel

Loader = Callable[[str, Callable[[ProgressEvent], None]], "TextModel"]


def default_loader(device: str | None = None, dtype: str | None = None) -> Loader:
    def load(model_id: str, on_progress: Callable[[ProgressEvent], None]) -> TextModel:
        from playground.runtime.inspection import load_for_inspection

        return load_for_inspection(model_id, device, dtype, on_progress)

    return load


class InspectWorker(ModelWorker):
    inspected = Signal(object)  # Inspection
    lens_ready = Signal(object, object)  # the Inspection it belongs to, Lens
    probed = Signal(object, object, float)  # ProbeRequest, [ProbeRow], seconds
    failed = Signal(str, str, bool)  # job ("inspect" | "lens" | "probe" | "load"), message, is_bug

    def __init__(self, loader: Loader | None = None, parent: QObject | None = None) -> None:
        super().__init__(loader or default_loader(), "engine-inspect", parent)

    def preload(self, model_id: str) -> Future:
        """Load ``model_id`` now (when the tab opens), so the first inspection only computes."""
        return self.submit(lambda: self._ensure(model_id) and None, None,
                           lambda message, is_bug: self.failed.emit("load", message, is_bug))

    def inspect(self, model_id: str, request: InspectRequest) -> Future:
        cancel = self.new_cancel()

        def job() -> Inspection:
            from playground.engine.inspect.attention import inspect

            return inspect(self._ensure(model_id), request, cancel=cancel)

        return self.submit(job, self.inspected.emit, lambda m, bug: self.failed.emit("inspect", m, bug))

    def lens(self, inspection: Inspection, positions: list[int]) -> Future:
        """The lens of ``inspection`` at ``positions`` (on the model that inspected it)."""
        def job() -> Any:
            from playground.engine.inspect.lens import lens

            return lens(self._ensure(inspection.model), inspection.hidden, positions)

        return self.submit(job, lambda result: self.lens_ready.emit(inspection, result),
                           lambda m, bug: self.failed.emit("lens", m, bug))

    def probe(self, model_id: str, request: ProbeRequest) -> Future:
        cancel = self.new_cancel()

        def job() -> tuple:
            tm = self._ensure(model_id)
            started = time.perf_counter()
            rows = run_probe(request, engine_scorer(tm), cancel)
            return request, rows, time.perf_counter() - started

        return self.submit(job, lambda result: self.probed.emit(*result),
                           lambda m, bug: self.failed.emit("probe", m, bug))
