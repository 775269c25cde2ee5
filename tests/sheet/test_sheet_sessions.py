"""The Sheet tab in the real window's sessions: fills and evaluations saved as runs, the sheet as a draft that
survives a relaunch, past runs re-opened from the history, a sheet per session."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtCore import Qt

from playground.store.db import open_database
from playground.store.repository import SessionStore
from playground.tasks.sheet import Sheet
from tests.common.scripted import ScriptedRunner
from tests.sheet.conftest import capitals
from tests.sheet.test_sheet_tab import fill, type_into
from ui.shell.main_window import MainWindow


@pytest.fixture
def open_window(qtbot, monkeypatch, tiny512):
    """The real window; its Sheet tab loads the tiny model whatever model is picked."""
    def loader(model_id, on_progress):
        return dataclasses.replace(tiny512, id=model_id)  # a copy: the tab unloads its model on close

    monkeypatch.setattr("ui.sheet.worker.default_loader", lambda *args, **kwargs: loader)
    monkeypatch.setattr("ui.sheet.tab.MAX_CELL_TOKENS", 6)  # short answers: the tiny model rambles

    def make():
        window = MainWindow(ScriptedRunner([" a"]), autoload=False)
        qtbot.addWidget(window)
        window.show()
        window.tabs.setCurrentWidget(window.sheet_tab)
        return window

    return make


def independent_store() -> SessionStore:
    """What another process (or the app after a crash) would read from disk."""
    return SessionStore(open_database())


def cells_of(tab) -> list[list[str]]:
    return [[c.value for c in row] for row in tab.model.cells]


def test_a_fill_is_saved_as_a_run_with_its_cells_and_confidences(qtbot, open_window):
    window = open_window()
    tab = window.sheet_tab
    tab.set_sheet(capitals(empty=2))
    result = fill(qtbot, tab)
    history = window.sessions.history
    assert history.count() == 1 and "sheet · done" in history.item(0).text()
    assert "Fill 2 cells · Country, Capital" in history.item(0).text()
    session_id = window.current_session
    window.close()

    store = independent_store()
    (run,) = store.runs(session_id)
    store.db.dispose()
    assert run.mode == "sheet" and run.status == "done" and run.inputs["kind"] == "fill"
    table = run.inputs["sheet"]
    assert table["header"] == ["Country", "Capital"] and table["rows"][11] == ["Greece", ""]
    assert table["marks"] == []  # every value in the table was typed
    cells = run.outputs["cells"]
    assert [(c["row"], c["column"]) for c in cells] == [(10, 1), (11, 1)]
    for cell, answer in zip(cells, result.answers, strict=True):
        assert cell["value"] == answer.value and cell["confidence"] == pytest.approx(answer.confidence, abs=1e-6)
        assert cell["top"] and {"text", "probability"} <= set(cell["top"][0])
    assert run.params["threshold"] == 0.5 and run.params["max_new_tokens"] == 6 and run.params["batch_size"] == 8
    assert run.timings["seconds"] > 0


def test_the_sheet_survives_closing_and_reopening_the_window(qtbot, open_window):
    window = open_window()
    tab = window.sheet_tab
    tab.set_sheet(capitals(empty=2))
    result = fill(qtbot, tab)
    tab.select(10, 1)
    tab.accept_button.click()  # (10, 1): the model's, kept as the user's
    type_into(qtbot, tab, 0, 1, "Paree")
    tab.model.set_instruction(1, "in Spanish")
    tab.threshold.setValue(0.0)

    def draft_saved() -> bool:  # the debounced draft, without closing
        store = independent_store()
        try:
            draft = store.draft(window.current_session).get("sheet", {})
            return draft.get("rows", [[]])[0] == ["France", "Paree"] and draft.get("threshold") == 0.0
        finally:
            store.db.dispose()

    qtbot.waitUntil(draft_saved, timeout=3000)
    expected = cells_of(tab)
    window.close()

    again = open_window()
    tab = again.sheet_tab
    assert cells_of(tab) == expected and tab.model.columns == ["Country", "Capital"]
    assert tab.model.instructions == {"Capital": "in Spanish"} and tab.threshold.value() == 0.0
    assert tab.model.state(0, 1) == "typed" and tab.model.state(10, 1) == "typed"
    assert tab.model.cells[10][1].accepted and not tab.model.cells[0][1].accepted
    assert tab.model.state(11, 1) == "model"
    restored = tab.model.cells[11][1].answer
    assert restored.value == result.answers[1].value
    assert restored.confidence == pytest.approx(result.answers[1].confidence, abs=1e-6)
    assert [g.text for g in restored.top] == [g.text for g in result.answers[1].top]
    assert "confidence" in tab.model.data(tab.model.index(11, 1), Qt.ItemDataRole.ToolTipRole)
    assert "1 model" in tab.counts.text() and tab.fill_button.isEnabled()


def test_history_reopens_a_past_fill_with_its_table_and_filled_cells(qtbot, open_window):
    window = open_window()
    tab = window.sheet_tab
    tab.set_sheet(capitals(empty=2))
    first = fill(qtbot, tab)
    first_cells = cells_of(tab)
    tab.set_sheet(Sheet(["City", "Country"], [["Paris", "France"], ["Rome", "Italy"], ["Lima", ""]]))
    fill(qtbot, tab)
    history = window.sessions.history
    assert history.count() == 2
    window.tabs.setCurrentIndex(0)

    history.itemActivated.emit(history.item(1))  # the older run
    assert window.tabs.currentWidget() is tab
    assert tab.model.columns == ["Country", "Capital"] and cells_of(tab) == first_cells
    for answer in first.answers:
        cell = tab.model.cells[answer.row][answer.column]
        assert cell.answer is not None and cell.answer.confidence == pytest.approx(answer.confidence, abs=1e-6)
    assert tab.model.state(0, 1) == "typed" and "saved run" in tab.stats.text()
    tab.grab().save("/tmp/sheet-restored.png")

    history.itemActivated.emit(history.item(0))
    assert tab.model.columns == ["City", "Country"] and tab.model.cells[2][1].answer is not None


def test_an_evaluation_is_saved_and_its_chart_comes_back(qtbot, open_window):
    window = open_window()
    tab = window.sheet_tab
    tab.set_sheet(Sheet(["Country", "Capital"], capitals(empty=0).rows[:6]))
    tab.eval_column.setCurrentIndex(1)
    tab.shots.setText("0,1")
    with qtbot.waitSignal(tab.eval_finished, timeout=20000) as blocker:
        tab.eval_button.click()
    points = blocker.args[0]
    (run,) = window.store.runs(window.current_session)
    assert run.inputs["kind"] == "eval" and run.outputs["column"] == "Capital"
    assert [p["k"] for p in run.outputs["points"]] == [0, 1] and run.params["shots"] == [0, 1]

    tab.eval_panel.clear_chart_button.click()
    assert tab.chart.series() == {}
    window.sessions.history.itemActivated.emit(window.sessions.history.item(0))
    assert [(p.k, p.n) for p in tab.eval_panel.points] == [(p.k, p.n) for p in points]
    assert list(tab.chart.series()) == [points[0].model] and tab.numbers.rowCount() == 2
    assert tab.eval_column.currentText() == "Capital"


def test_each_session_has_its_own_sheet(qtbot, open_window):
    window = open_window()
    tab, panel = window.sheet_tab, window.sessions
    first = window.current_session
    tab.set_sheet(capitals(empty=2))
    fill(qtbot, tab)
    first_cells = cells_of(tab)
    panel.new_button.click()
    second = window.current_session
    assert second != first
    assert tab.model.columns == ["Column 1", "Column 2"] and cells_of(tab) == [["", ""]] * 3  # a new, empty sheet
    assert tab.chart.series() == {} and tab.threshold.value() == 0.5
    type_into(qtbot, tab, 0, 0, "only in the second")

    panel.select(first)
    assert cells_of(tab) == first_cells and tab.model.cells[11][1].answer is not None
    panel.select(second)
    assert cells_of(tab) == [["only in the second", ""], ["", ""], ["", ""]]


def test_a_fill_running_when_the_session_changes_stays_out_of_the_new_sheet(qtbot, open_window):
    window = open_window()
    tab, panel = window.sheet_tab, window.sessions
    first = window.current_session
    sheet = capitals(empty=0)
    sheet.rows += [[f"Country {i}", ""] for i in range(300)]
    tab.set_sheet(sheet)
    tab.fill_button.click()
    qtbot.waitUntil(lambda: len(tab.model.model_cells()) >= 2, timeout=20000)
    panel.new_button.click()  # the fill is let go: stopped, and its remaining cells are dropped
    assert tab.fill_button.isEnabled() and not tab.model.pending and cells_of(tab) == [["", ""]] * 3

    tab.set_sheet(capitals(empty=1))
    fill(qtbot, tab)  # the worker runs one job at a time: the old job's last events came before this one's
    assert tab.model.rowCount() == 12 and len(tab.model.model_cells()) == 1
    assert [r.inputs["kind"] for r in window.store.runs(window.current_session)] == ["fill"]
    assert window.store.runs(first) == []
