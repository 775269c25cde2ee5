"""The Compare tab's own engine thread: columns run one after another through a memory-budgeted ModelPool.

Same seam as ui/common/model_worker.py: a one-thread pool; the worker only emits signals, which reach GUI-thread
``@Slot`` methods of the tab. It never shares a model with the Prompt tab's runner.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import QObject, Signal

from playground.runtime.model_pool import Loader, ModelPool
from playground.tasks.compare_run import ColumnOutcome, run_columns
from ui.common.worker import Worker


class CompareWorker(Worker):
    column_started = Signal(int, str)  # column index, model id
    token = Signal(int, object)  # column index, TokenEvent
    column_done = Signal(object)  # ColumnOutcome
    all_done = Signal(bool)  # cancelled
    failed = Signal(str, bool)  # message, is_bug (a bug outside any column)
    pool_changed = Signal(object)  # PoolState

    def __init__(self, loader: Loader | None = None, budget_bytes: int | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__("engine-compare", parent)
        self.pool = ModelPool(loader, budget_bytes, on_change=self.pool_changed.emit)

    def run(self, columns: list[dict[str, Any]], defaults: dict[str, Any], source: str, prompt: str,
            only: set[int] | None = None) -> Future:
        """Run the columns (or those in ``only``); signals per column, then ``all_done``."""
        cancel = self.new_cancel()

        def job() -> list[ColumnOutcome]:
            return run_columns(self.pool, columns, defaults, source, prompt, cancel, self.column_started.emit,
                               self.token.emit, self.column_done.emit, lambda e: self.status.emit(e.stage), only)

        def failed(message: str, is_bug: bool) -> None:
            self.failed.emit(message, is_bug)
            self.all_done.emit(True)

        return self.submit(job, lambda _: self.all_done.emit(cancel.is_set()), failed)

    def set_budget(self, budget_bytes: int) -> None:
        self._pool.submit(self.pool.set_budget, budget_bytes)

    def _release(self) -> None:
        self.pool.unload_all()
