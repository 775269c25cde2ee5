"""Sheet-mode run records: a fill or an evaluation as the session keeps it, from the job that ran it.

A ``SheetJob`` is taken when the job starts (the table as it was, the parameters) and collects the answers as
they arrive, so a stopped or failed job is recorded with what it got. The table is ``table_to_dict``'s JSON;
``sheet_state.state_of_run`` reads a record back into a sheet.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from playground.domain.sheet import CellAnswer, FillResult
from playground.store.records import Run
from playground.tasks.sheet_eval import EvalPlan, EvalPoint
from playground.tasks.sheet_state import answer_to_dict
from playground.tasks.sheet_transfer import TransferPlan, train_run, transfer_run


@dataclass
class SheetJob:
    """One fill or evaluation in flight."""

    kind: str  # "fill" | "eval" | "transfer" (few-shot vs LoRA) | "train" (an adapter); see ``sheet_transfer``
    tag: str  # the worker's name for it: events of another job are not this one's
    model_id: str
    table: dict[str, Any]  # the table as the job started (``table_to_dict``)
    params: dict[str, Any]
    total: int  # cells to fill, or evaluation questions
    plan: EvalPlan | TransferPlan | None = None  # an evaluation's plan
    answers: list[CellAnswer] = field(default_factory=list)  # as they arrive
    started: float = field(default_factory=time.perf_counter)

    def finished(self, result: FillResult, points: Sequence[EvalPoint] = ()) -> Run:
        """The record of a job that ran to its end or was stopped (``points``: an evaluation's scores)."""
        status = "cancelled" if result.cancelled else "done"
        if self.kind == "fill":
            return fill_run(self.table, result.model, self.params, result.answers, result.seconds, status)
        return eval_run(self.table, self.model_id, self.params, self._column(), points, result.seconds, status)

    def failed(self, error: str) -> Run:
        """The record of a job that failed with ``error``, with the cells it had filled."""
        seconds = time.perf_counter() - self.started
        if self.kind == "fill":
            return fill_run(self.table, self.model_id, self.params, self.answers, seconds, "failed", error)
        if self.kind == "transfer":
            return transfer_run(self.table, self.model_id, self.params, self._column(), [], seconds, "failed",
                                error)
        if self.kind == "train":
            return train_run(self.table, self.model_id, self.params, str(self.params.get("column", "")), None,
                             seconds, "failed", error)
        return eval_run(self.table, self.model_id, self.params, self._column(), [], seconds, "failed", error)

    def _column(self) -> str:
        return self.plan.column_name if self.plan is not None else ""


def fill_run(table: dict[str, Any], model_id: str, params: dict[str, Any], answers: Sequence[CellAnswer | None],
             seconds: float, status: str, error: str | None = None) -> Run:
    """A Sheet-mode fill run: the table it started from, and every cell the model filled with its confidence."""
    cells = [answer_to_dict(a) for a in answers if a is not None]
    header = [str(h) for h in table.get("header") or []]
    return Run(mode="sheet", model_id=model_id, params=dict(params),
               inputs={"kind": "fill", "sheet": table,
                       "description": f"Fill {len(cells)} cell{'s' * (len(cells) != 1)} · {', '.join(header)}"},
               outputs={"cells": cells}, timings={"seconds": round(seconds, 3)}, status=status, error=error)


def eval_run(table: dict[str, Any], model_id: str, params: dict[str, Any], column: str, points: Sequence[EvalPoint],
             seconds: float, status: str, error: str | None = None) -> Run:
    """A Sheet-mode evaluation run: the table, and the accuracy per k and metric on ``column``."""
    shots = ", ".join(str(k) for k in params.get("shots", ()))
    return Run(mode="sheet", model_id=model_id, params=dict(params),
               inputs={"kind": "eval", "sheet": table, "description": f"Evaluate {column!r} at k = {shots}"},
               outputs={"column": column, "points": [p.as_dict() for p in points]},
               timings={"seconds": round(seconds, 3)}, status=status, error=error)
