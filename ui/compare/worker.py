"""The Compare tab's own engine thread: columns run one after another through a memory-budgeted ModelPool.

Same seam as ui/common/model_worker.py: a one-thread pool; the worker only emits signals, which reach GUI-thread
``@Slot`` methods of the tab. It never shares a model with the Prompt tab's runner.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal

from playground.domain.jobs import Cancel
from playground.runtime.model_pool import Loader, ModelPool
from playground.tasks.compare_run import ColumnOutcome, run_columns
from ui.common.model_worker import describe_failure


class CompareWorker(QObject):
    column_started = Signal(int, str)  # column index, model id
    token = Signal(int, object)  # column index, TokenEvent
    column_done = Signal(object)  # ColumnOutcome
    all_done = Signal(bool)  # cancelled
    failed = Signal(str, bool)  # message, is_bug (a bug outside any column)
    pool_changed = Signal(object)  # PoolState
    status = Signal(str)

    def __init__(self, loader: Loader | None = None, budget_bytes: int | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = ModelPool(loader, budget_bytes, on_change=self.pool_changed.emit)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-compare")
        self._cancel: Cancel | None = None
        self._closed = False

    def run(self, columns: list[dict[str, Any]], defaults: dict[str, Any], source: str, prompt: str,
            only: set[int] | None = None) -> Future:
        """Run the columns (or those in ``only``); signals per column, then ``all_done``."""
        cancel = self._cancel = Cancel()

        def job() -> list[ColumnOutcome]:
            return run_columns(self.pool, columns, defaults, source, prompt, cancel, self.column_started.emit,
                               self.token.emit, self.column_done.emit, lambda e: self.status.emit(e.stage), only)

        future = self._pool.submit(job)
        future.add_done_callback(lambda f: self._done(f, cancel))
        return future

    def set_budget(self, budget_bytes: int) -> None:
        self._pool.submit(self.pool.set_budget, budget_bytes)

    def _done(self, f: Future, cancel: Cancel) -> None:  # worker thread: only emit signals
        exc = None if f.cancelled() else f.exception()
        if exc is not None:
            self.failed.emit(*describe_failure(exc))
        self.all_done.emit(cancel.is_set() or f.cancelled())

    def stop(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def shutdown(self) -> None:
        """Stop, join the worker thread, unload every pooled model. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.pool.unload_all()
