"""The Sheet tab's own engine thread: loads a model (cached by id) and runs SheetFiller jobs off the GUI thread.

The worker base (ui/common/worker.py) runs the jobs and relays each outcome to the GUI thread after its last cell.
A job is a tag ("fill", "eval", "transfer", "train") so the tab knows which run an answer belongs to. Fine-tuning
jobs (``transfer``, ``train_adapter``) report on ``progress`` / ``points`` and end on ``done``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from playground.domain.jobs import ProgressEvent
from playground.domain.sheet import CellPrompt
from ui.common.worker import ModelWorker

if TYPE_CHECKING:
    from playground.domain.sheet import FillResult
    from playground.engine.lora import LoraSettings
    from playground.engine.text import TextModel
    from playground.tasks.sheet import Sheet
    from playground.tasks.sheet_transfer import TrainedAdapter, TransferPlan, TransferResult

Loader = Callable[[str, Callable[[ProgressEvent], None]], "TextModel"]


def default_loader(device: str | None = None, dtype: str | None = None) -> Loader:
    """Load through the registry (converting or downloading on first use), as the main runner does; a ``remote:``
    id gives a RemoteTextModel, filled one request per cell."""
    def load(model_id: str, on_progress: Callable[[ProgressEvent], None]) -> TextModel:
        from playground.runtime.dispatch import load_model

        on_progress(ProgressEvent(f"Loading {model_id} for the sheet", None))
        return load_model(model_id, device, dtype, on_progress)

    return load


class SheetWorker(ModelWorker):
    cell = Signal(str, object)  # tag, CellAnswer: emitted on the worker thread, queued to the GUI
    finished = Signal(str, object)  # tag, FillResult
    failed = Signal(str, str, bool)  # tag, message, is_bug
    progress = Signal(str, object)  # tag, TransferProgress (transfer) or TrainProgress (train_adapter)
    points = Signal(str, object)  # tag, list[TransferPoint] as they are measured
    done = Signal(str, object)  # tag, TransferResult or TrainedAdapter

    def __init__(self, loader: Loader | None = None, parent: QObject | None = None) -> None:
        super().__init__(loader or default_loader(), "engine-sheet", parent)

    def fill(self, tag: str, model_id: str, prompts: Sequence[CellPrompt], numeric_columns: Sequence[int],
             max_new_tokens: int, batch_size: int = 8, constraints: dict[int, Any] | None = None) -> Future:
        """Complete ``prompts`` with ``model_id`` on the worker; answers arrive on ``cell``, then ``finished``.
        ``constraints``: column -> Constraint for typed columns (their cells are generated under it)."""
        cancel = self.new_cancel()
        prompts = list(prompts)

        def job() -> FillResult:
            from playground.runtime.dispatch import sheet_filler

            model = self._ensure(model_id)
            filler = sheet_filler(model, batch_size, max_new_tokens)
            if constraints:
                from playground.runtime.typed_fill import TypedFiller

                filler = TypedFiller(model, filler, constraints, max_new_tokens)
            return filler.fill(prompts, lambda a: self.cell.emit(tag, a), cancel, numeric_columns)

        return self.submit(job, lambda result: self.finished.emit(tag, result),
                           lambda message, is_bug: self.failed.emit(tag, message, is_bug))

    def transfer(self, tag: str, model_id: str, plan: TransferPlan, settings: LoraSettings,
                 tolerance: float, batch_size: int = 8) -> Future:
        """Few-shot vs LoRA at every k of ``plan`` (``playground.tasks.sheet_transfer.run_transfer``)."""
        cancel = self.new_cancel()

        def job() -> TransferResult:
            from playground.tasks.sheet_transfer import run_transfer

            return run_transfer(self._ensure(model_id), plan, settings, lambda p: self.progress.emit(tag, p),
                                lambda pts: self.points.emit(tag, pts), cancel, tolerance, batch_size)

        return self.submit(job, lambda result: self.done.emit(tag, result),
                           lambda message, is_bug: self.failed.emit(tag, message, is_bug))

    def train_adapter(self, tag: str, model_id: str, sheet: Sheet, column: int, name: str,
                      settings: LoraSettings) -> Future:
        """Train and save ``model_id+name`` on the sheet's complete rows (``sheet_transfer.train_adapter``)."""
        cancel = self.new_cancel()

        def job() -> TrainedAdapter:
            from playground.tasks.sheet_transfer import train_adapter

            return train_adapter(self._ensure(model_id), sheet, column, name, None, settings,
                                 lambda p: self.progress.emit(tag, p), cancel)

        return self.submit(job, lambda result: self.done.emit(tag, result),
                           lambda message, is_bug: self.failed.emit(tag, message, is_bug))
