"""The Sheet tab's runs: Fill (the empty cells) and Evaluate (a column at several k), on its worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from playground.engine.fill import DEFAULT_BATCH
from playground.errors import KnownError
from playground.tasks.sheet import DEFAULT_MAX_EXAMPLES, fill_prompts
from playground.tasks.sheet_eval import DEFAULT_QUERIES

if TYPE_CHECKING:
    from ui.sheet.tab import SheetTab


def fill(tab: SheetTab) -> None:
    """Complete every empty cell (in rows with something known) on the worker."""
    if tab._job is not None:
        return
    sheet = tab.model.prompt_sheet()
    try:
        prompts = fill_prompts(sheet, tab.model.empty_cells())
    except KnownError as exc:
        tab.show_error(str(exc))
        return
    if not prompts:
        tab.show_error("No empty cell to fill: clear a cell, or add a row with a value in it")
        return
    try:
        constraints = tab._constraints(sheet)
    except KnownError as exc:
        tab.show_error(str(exc))
        return
    tab.clear_error()
    typed_numbers = {c for c in constraints if tab.column_types.types().get(sheet.columns[c]) == "number"}
    numeric = sorted(set(sheet.numeric_columns()) | typed_numbers)
    max_tokens = tab._max_tokens()
    job = tab._start("fill", tab.model_id(), len(prompts), {
        "threshold": tab.threshold.value(), "max_new_tokens": max_tokens, "batch_size": DEFAULT_BATCH,
        "max_examples": DEFAULT_MAX_EXAMPLES})
    tab.model.set_pending({(p.row, p.column) for p in prompts})
    tab.stats.setText(f"filling 0 / {len(prompts):,}…")
    tab.worker.fill(job.tag, job.model_id, prompts, numeric, max_tokens, DEFAULT_BATCH, constraints)


def evaluate(tab: SheetTab) -> None:
    """Measure accuracy on the chosen column for each k with the current model; adds its line to the chart.
    With Fine-tune (LoRA) checked: few-shot vs LoRA at each k instead (``ui.sheet.transfer``)."""
    if tab._job is not None:
        return
    if tab.transfer.wanted():
        tab.transfer.start()
        return
    try:
        plan = tab.eval_panel.plan(tab.model.prompt_sheet())
    except KnownError as exc:
        tab.show_error(str(exc))
        return
    tab.clear_error()
    tab._show_notice(plan.notes)
    max_tokens = tab._max_tokens()
    job = tab._start("eval", tab.model_id(), len(plan.cases), {
        "column": plan.column_name, "shots": list(plan.shots), "max_queries": DEFAULT_QUERIES,
        "tolerance": tab.tolerance.value(), "max_new_tokens": max_tokens, "batch_size": DEFAULT_BATCH}, plan)
    tab.stats.setText(f"evaluating 0 / {len(plan.cases)}…")
    tab.worker.fill(job.tag, job.model_id, plan.prompts, [plan.column] if plan.numeric else [], max_tokens,
                     DEFAULT_BATCH)
