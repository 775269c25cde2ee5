"""Compare columns' word diffs against the reference column, and a sweep turned into columns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from playground.errors import ParameterError
from playground.tasks.compare import MIN_COLUMNS, diff_words, most_confident, parse_values, sweep

if TYPE_CHECKING:
    from ui.compare.tab import CompareTab


def update_diffs(tab: CompareTab) -> None:
    """Underline where each finished column departs from the reference; star the most confident."""
    ref_index = tab.reference_index()
    reference = tab.columns[ref_index] if tab.columns else None
    for i, column in enumerate(tab.columns):
        ok = column.result is not None and "error" not in column.result
        if i == ref_index or reference is None or reference.result is None or not ok:
            column.apply_diff(None)
        else:
            column.apply_diff(diff_words(reference.text(), column.text()))
    best = most_confident([c.result for c in tab.columns])
    for i, column in enumerate(tab.columns):
        column.set_confident(i == best)


def make_sweep(tab: CompareTab) -> None:
    """Replace the columns by the first column with the chosen parameter set to each value."""
    key = tab.sweep_key.currentText()
    try:
        base = tab.columns[0].spec() if tab.columns else {}
        specs = sweep(base, key, parse_values(key, tab.sweep_values.text()))
    except ParameterError as exc:
        tab.show_error(str(exc))
        return
    if len(specs) < MIN_COLUMNS:
        specs.append(dict(specs[0]))
    tab.clear_error()
    tab.set_columns(specs)
