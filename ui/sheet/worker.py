"""The Sheet tab's own engine thread: loads a model (cached by id) and runs SheetFiller jobs off the GUI thread.

The worker base (ui/common/worker.py) runs the jobs and relays each outcome to the GUI thread after its last cell.
A job is a tag ("fill" or "eval") so the tab knows which run an answer belongs to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from playground.domain.jobs import ProgressEvent
from playground.domain.sheet import CellPrompt
from ui.common.worker import ModelWorker

if TYPE_CHECKING:
    from playground.domain.sheet import FillResult
    from playground.engine.text import TextModel

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

    def __init__(self, loader: Loader | None = None, parent: QObject | None = None) -> None:
        super().__init__(loader or default_loader(), "engine-sheet", parent)

    def fill(self, tag: str, model_id: str, prompts: Sequence[CellPrompt], numeric_columns: Sequence[int],
             max_new_tokens: int, batch_size: int = 8) -> Future:
        """Complete ``prompts`` with ``model_id`` on the worker; answers arrive on ``cell``, then ``finished``."""
        cancel = self.new_cancel()
        prompts = list(prompts)

        def job() -> FillResult:
            from playground.runtime.dispatch import sheet_filler

            filler = sheet_filler(self._ensure(model_id), batch_size, max_new_tokens)
            return filler.fill(prompts, lambda a: self.cell.emit(tag, a), cancel, numeric_columns)

        return self.submit(job, lambda result: self.finished.emit(tag, result),
                           lambda message, is_bug: self.failed.emit(tag, message, is_bug))
