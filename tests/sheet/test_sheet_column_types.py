"""Column types in the Sheet: a "number" column only gets numbers, a "one of the values seen" column only values it
already holds, even from a random model; free-text columns stay on the batched filler."""

from __future__ import annotations

import os
import re

import pytest

from playground.domain.sheet import parse_number
from playground.tasks.constraints import column_constraint
from playground.tasks.sheet import Sheet
from tests.sheet.conftest import capitals
from tests.sheet.test_sheet_tab import fill, make_tab  # noqa: F401 - the fixture

SHOTS = os.environ.get("PLAYGROUND_SCREENSHOTS")


def populations(empty: int = 4) -> Sheet:
    rows = [["France", "68"], ["Japan", "125"], ["Kenya", "54"], ["Canada", "39"], ["Italy", "59"],
            ["Peru", ""], ["Chile", ""], ["Greece", ""], ["Norway", ""]]
    return Sheet(["Country", "Population"], rows[: len(rows) - 4 + empty])


def test_a_number_column_only_gets_numbers(qtbot, make_tab) -> None:  # noqa: F811
    tab = make_tab(max_tokens=8)
    tab.set_sheet(populations())
    free = fill(qtbot, tab)  # untyped: a random model writes anything
    assert any(parse_number(a.value) is None for a in free.answers)
    for a in free.answers:
        tab.select(a.row, a.column)
        tab.clear_button.click()
    tab.column_types.column.setCurrentText("Population")
    tab.column_types.kind.setCurrentText("number")
    result = fill(qtbot, tab)
    assert len(result.answers) == 4
    for answer in result.answers:
        assert re.fullmatch(r"-?[0-9][0-9,]*(\.[0-9]+)?", answer.value), answer.value
        assert tab.model.cells[answer.row][answer.column].value == answer.value
        assert 0 <= answer.confidence <= 1 and answer.tokens
    if SHOTS:
        tab.grab().save(os.path.join(SHOTS, "sheet_column_types.png"))
    draft = tab.draft()  # the type is kept with the session
    assert draft["column_types"] == {"Population": "number"}
    tab.column_types.kind.setCurrentText("free text")
    tab.restore(draft, None)
    tab.column_types.column.setCurrentText("Population")
    assert tab.column_types.kind.currentText() == "number"


def test_one_of_the_values_seen(qtbot, make_tab) -> None:  # noqa: F811
    tab = make_tab(max_tokens=10)
    sheet = capitals(empty=3)
    sheet.columns = ["Country", "Continent"]
    continents = ["Europe", "Asia", "Africa", "America"]
    for i, row in enumerate(sheet.rows[:-3]):
        row[1] = continents[i % 4]
    tab.set_sheet(sheet)
    tab.column_types.column.setCurrentText("Continent")
    tab.column_types.kind.setCurrentText("one of the values seen")
    result = fill(qtbot, tab)
    assert len(result.answers) == 3 and all(a.value in continents for a in result.answers)


def test_column_constraints_refuse_what_cannot_work() -> None:
    with pytest.raises(Exception, match="no values yet"):
        column_constraint("one of the values seen", ["", " "])
    assert column_constraint("free text", ["x"]) is None
    with pytest.raises(Exception, match="Unknown column type"):
        column_constraint("date", [])
