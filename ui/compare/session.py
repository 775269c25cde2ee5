"""The Compare tab's session side: its draft, restoring it, and re-opening a saved comparison."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from playground.domain.text import Alternative, TokenEvent
from playground.errors import ParameterError
from playground.store.records import Run, optional_float
from playground.tasks.compare import MIN_COLUMNS, SWEEP_KEYS, column_stats, stats_text

if TYPE_CHECKING:
    from ui.compare.tab import CompareTab


def draft(tab: CompareTab) -> dict[str, Any]:
    specs = []
    for column in tab.columns:
        try:
            specs.append({k: list(v) if isinstance(v, tuple) else v for k, v in column.spec().items()})
        except ParameterError:
            specs.append({})
    return {"source": tab.source.toPlainText(), "prompt": tab.prompt.toPlainText(), "columns": specs,
            "reference": tab.reference_index(), "probabilities": tab.probabilities.isChecked(),
            "sweep_key": tab.sweep_key.currentText(), "sweep_values": tab.sweep_values.text(),
            "budget_mb": tab.budget.value(), "image_grid": tab.image_grid.draft(),
            "layouts": tab.layouts.draft(), "view": tab.views.currentIndex(),
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in tab.params.values().items()}}

def restore(tab: CompareTab, draft: dict[str, Any], last_run: Run | None) -> None:
    tab.source.setPlainText(str(draft.get("source", "")))
    tab.prompt.setPlainText(str(draft.get("prompt", "")))
    specs = [s for s in draft.get("columns") or [] if isinstance(s, dict)]
    tab.set_columns(specs if len(specs) >= MIN_COLUMNS else [{"temperature": 0.0}, {"temperature": 1.0}],
                     int(draft.get("reference", 0) or 0))
    tab.probabilities.setChecked(bool(draft.get("probabilities", False)))
    if isinstance(draft.get("params"), dict):
        tab.params.apply(draft["params"], origin="as last used in this session")
    else:
        tab.params.reset()
    tab.sweep_key.setCurrentText(str(draft.get("sweep_key", SWEEP_KEYS[0])))
    tab.sweep_values.setText(str(draft.get("sweep_values", "")))
    if isinstance(draft.get("budget_mb"), int):
        tab.budget.setValue(draft["budget_mb"])
        tab._on_budget_edited()
    tab.image_grid.restore(draft.get("image_grid") or {})
    tab.layouts.restore(draft.get("layouts") or {})
    tab.views.setCurrentIndex(int(draft.get("view", 0) or 0))
    tab.error.hide()
    # What the user last saw in each view: the last text comparison's columns (with their stats) and the last
    # grid's images (the session's runs when the window gives them; else only the last run).
    runs = tab.run_source() if tab.run_source is not None else [r for r in (last_run,) if r is not None]
    text = next((r for r in reversed(runs) if r.inputs.get("kind", "text") == "text"), None)
    grid = next((r for r in reversed(runs) if r.inputs.get("kind") == "image"), None)
    if text is not None and [c.spec() for c in tab.columns if _valid(c)] == _specs(text):
        _show_outputs(tab, text)
    if grid is not None:
        tab.image_grid.show_run(grid)
        tab.image_grid.restore(draft.get("image_grid") or {})  # the draft's edits since, over the run's settings


def _valid(column: Any) -> bool:
    try:
        column.spec()
    except ParameterError:
        return False
    return True


def _specs(run: Run) -> list[dict[str, Any]]:
    """The run's column specs as ``CompareColumn.spec`` gives them (lists back to tuples)."""
    return [{k: tuple(v) if isinstance(v, list) else v for k, v in c.items()}
            for c in run.inputs.get("columns", []) if isinstance(c, dict)]

def show_run(tab: CompareTab, run: Run) -> None:
    """Re-open a past comparison: its inputs, columns and outputs (re-run it after changing a column)."""
    kind = run.inputs.get("kind", "text")
    if kind == "image":
        tab.views.setCurrentWidget(tab.image_grid)
        tab.image_grid.show_run(run)
        return
    if kind == "layout":
        tab.views.setCurrentWidget(tab.layouts)
        tab.layouts.show_run(run)
        return
    tab.views.setCurrentIndex(0)
    tab.source.setPlainText(str(run.inputs.get("source", "")))
    tab.prompt.setPlainText(str(run.inputs.get("prompt", "")))
    tab.set_columns([c for c in run.inputs.get("columns", []) if isinstance(c, dict)],
                     int(run.inputs.get("reference", 0) or 0))
    _show_outputs(tab, run)
    if run.error:
        tab._show_error(run.error)

def _show_outputs(tab: CompareTab, run: Run) -> None:

    for column, result in zip(tab.columns, run.outputs.get("columns", []), strict=False):
        if not isinstance(result, dict):
            continue
        column.start()
        events = [TokenEvent(0, i, t["text"], -1, optional_float(t.get("logprob")),  # ids are not in the JSON
                             tuple(Alternative(a["text"], -1 if a["text"] == t["text"] else -2,
                                               float(a["logprob"])) for a in t.get("top", [])))
                  for i, t in enumerate(result.get("tokens", []))]
        column.append_tokens(events)
        column.finish(result, "" if "error" in result else stats_text(column_stats(result)))
    tab.update_diffs()

