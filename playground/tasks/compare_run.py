"""Running a comparison: every column one after another on the one device, models swapped through a ModelPool.

Shared by the CLI and the Compare tab's worker thread. Callbacks run on the calling (worker) thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from playground.domain import GenerationResult, ProgressEvent, TokenEvent
from playground.engine.generate import Cancel, generate
from playground.engine.model_pool import ModelPool
from playground.errors import KnownError
from playground.tasks.compare import resolve


@dataclass(frozen=True)
class ColumnOutcome:
    """One column's end: a result (possibly cancelled, with its partial text) or an error message."""

    index: int
    model: str
    result: GenerationResult | None = None
    error: str | None = None
    request: Any = None  # the GenerationRequest that ran

    def to_json(self) -> dict[str, Any]:
        """The ``complete --json`` object, or ``{"model", "error"}`` for a column that failed."""
        if self.result is not None:
            return self.result.to_json()
        return {"model": self.model, "error": self.error or "not run"}


def run_columns(pool: ModelPool, columns: list[dict[str, Any]], defaults: dict[str, Any], source: str,
                prompt: str, cancel: Cancel | None = None,
                on_start: Callable[[int, str], None] = lambda i, m: None,
                on_token: Callable[[int, TokenEvent], None] = lambda i, e: None,
                on_done: Callable[[ColumnOutcome], None] = lambda o: None,
                on_progress: Callable[[ProgressEvent], None] = lambda e: None,
                only: set[int] | None = None) -> list[ColumnOutcome]:
    """Generate each column (or just those in ``only``); a failing column does not stop the others, a cancel
    does (the running column keeps its partial output, the rest are reported as cancelled)."""
    cancel = cancel or Cancel()
    outcomes = []
    for i, column in enumerate(columns):
        if only is not None and i not in only:
            continue
        model_id = str(column.get("model") or defaults.get("model") or "")
        if cancel.is_set():
            outcome = ColumnOutcome(i, model_id, error="cancelled before it started")
        else:
            on_start(i, model_id)
            try:
                model_id, request = resolve(column, defaults, source, prompt)
                tm = pool.get(model_id, on_progress)
                result = generate(tm, request, lambda e, i=i: on_token(i, e), cancel)
                outcome = ColumnOutcome(i, model_id, result=result, request=request)
            except (KnownError, ValueError) as exc:
                outcome = ColumnOutcome(i, model_id, error=str(exc))
        outcomes.append(outcome)
        on_done(outcome)
    return outcomes
