"""The Sheet tab's session side: its draft, restoring it, and re-opening a saved fill or evaluation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from playground.store.records import Run
from playground.tasks.sheet_state import sheet_from_dict, sheet_to_dict, state_of_run

if TYPE_CHECKING:
    from ui.sheet.tab import SheetTab


def draft(tab: SheetTab) -> dict[str, Any]:
    """The whole sheet as saved in the session's draft: table, marks, threshold, evaluation and chart."""
    state = tab.model.snapshot()
    state.threshold = tab.threshold.value()
    tab.eval_panel.save_into(state)
    return {**sheet_to_dict(state), "column_types": tab.column_types.types(),
            "params": {"max_new_tokens": tab._max_tokens()}}


def restore(tab: SheetTab, draft: dict[str, Any], last_run: Run | None) -> None:
    """Open a session: its draft sheet (an empty draft is a new, empty sheet)."""
    tab._abandon_job()
    tab._load(sheet_from_dict(draft))
    types = draft.get("column_types")
    tab.column_types.set_types(types if isinstance(types, dict) else {})
    if isinstance(draft.get("params"), dict):
        tab.params.apply(draft["params"], origin="as last used in this session")
    else:
        tab.params.reset()
    tab.clear_error()  # nothing of the session left before stays on screen
    tab.preset_note.clear()
    tab.presets.setCurrentIndex(0)
    tab.stats.setText(f"last run: {last_run.status} · {last_run.model_id}" if last_run is not None else "")


def show_run(tab: SheetTab, run: Run) -> None:
    """Re-open a past run: its table, with the cells it filled (a fill) or its chart (an evaluation)."""
    tab._abandon_job()
    state = state_of_run(run)
    if run.inputs.get("kind") not in ("eval", "transfer"):
        tab.eval_panel.save_into(state)  # a fill leaves the chart as it is
    tab._load(state)
    if run.error:
        tab.show_error(run.error)
    tab.stats.setText(f"{run.status} · {run.model_id} · saved run")
