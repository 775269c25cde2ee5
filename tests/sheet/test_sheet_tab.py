"""The Sheet tab offscreen, on the tiny model through its real worker thread: edit, fill, stop, accept, clear,
CSV in and out (file, drop, paste), evaluation chart."""

from __future__ import annotations

import csv
import dataclasses

import pytest
from PySide6.QtCore import QMimeData, QModelIndex, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QAbstractItemView, QLineEdit

from playground.errors import KnownError
from playground.tasks.sheet import Sheet, read_csv, to_csv
from tests.sheet.conftest import capitals
from ui.common.params_panel import ParamsPanel
from ui.sheet.tab import SheetTab


@pytest.fixture
def make_tab(qtbot, tiny512):
    tabs = []
    loads = []

    def make(model_id: str = "tiny", max_tokens: int = 6):
        def loader(model, on_progress):
            loads.append(model)
            # A copy per load: the tab unloads its model on shutdown, the session's tiny model must survive.
            return dataclasses.replace(tiny512, id=model)

        params = ParamsPanel()
        params.max_tokens.setValue(max_tokens)
        tab = SheetTab(params, lambda: tab.test_model_id, loader)
        tab.test_model_id = model_id
        tab.loads = loads
        qtbot.addWidget(tab)
        tab.resize(1100, 800)
        with qtbot.waitActive(tab):
            tab.show()
            tab.activateWindow()
        tabs.append(tab)
        return tab

    yield make
    for tab in tabs:
        tab.shutdown()


def fill(qtbot, tab, timeout=20000):
    with qtbot.waitSignal(tab.fill_finished, timeout=timeout) as blocker:
        tab.fill_button.click()
    return blocker.args[0]


def type_into(qtbot, tab, row, column, text):
    """Type like a user: open the cell's editor (as a double-click does), type, Enter."""
    tab.select(row, column)
    tab.view.edit(tab.model.index(row, column))
    editor = tab.view.viewport().findChild(QLineEdit)
    assert editor is not None
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tab.model.cells[row][column].value == text, timeout=2000)  # Qt commits queued


def test_type_fill_then_accept_and_clear(qtbot, make_tab):
    tab = make_tab()
    tab.set_sheet(capitals(empty=2))
    type_into(qtbot, tab, 10, 1, "Santiago")
    assert tab.model.cells[10][1].value == "Santiago" and tab.model.state(10, 1) == "typed"

    result = fill(qtbot, tab)
    assert [(a.row, a.column) for a in result.answers] == [(11, 1)]  # only the cell left empty
    answer = result.answers[0]
    assert tab.model.cells[11][1].answer == answer and not tab.model.pending
    assert 0 <= answer.confidence <= 1
    index = tab.model.index(11, 1)
    tip = tab.model.data(index, Qt.ItemDataRole.ToolTipRole)
    assert "confidence" in tip and "product of the probabilities" in tip and "alternatives" in tip
    assert "filled 1 of 1" in tab.stats.text() and tab.fill_button.isEnabled()

    tab.threshold.setValue(1.0)  # a random model is never certain: the cell is shown unsure, not pretended
    assert tab.model.state(11, 1) == "unsure"
    assert tab.model.data(index, Qt.ItemDataRole.DisplayRole).startswith("? ")
    tab.threshold.setValue(0.0)
    assert tab.model.state(11, 1) == "model"
    assert tab.model.data(index, Qt.ItemDataRole.BackgroundRole) is not None
    assert tab.model.data(index, Qt.ItemDataRole.FontRole).italic()  # distinct from typed cells
    assert tab.model.data(tab.model.index(0, 1), Qt.ItemDataRole.FontRole) is None

    tab.select(11, 1)
    tab.accept_button.click()
    assert tab.model.state(11, 1) == "typed" and tab.model.cells[11][1].value == answer.value
    tab.select(11, 1)
    tab.clear_button.click()
    assert tab.model.cells[11][1].value == "" and (11, 1) in tab.model.empty_cells()


def test_stop_mid_fill_keeps_filled_cells(qtbot, make_tab):
    tab = make_tab(max_tokens=32)
    sheet = capitals(empty=0)
    sheet.rows += [[f"Country {i}", ""] for i in range(600)]
    tab.set_sheet(sheet)
    runs = []
    tab.run_ended.connect(runs.append)
    tab.fill_button.click()
    assert tab.stop_button.isEnabled() and not tab.fill_button.isEnabled()
    assert tab.view.editTriggers() == QAbstractItemView.EditTrigger.NoEditTriggers  # no edits under the model
    qtbot.waitUntil(lambda: len(tab.model.model_cells()) >= 8, timeout=20000)
    assert tab.model.state(600, 1) == "pending"
    with qtbot.waitSignal(tab.fill_finished, timeout=10000) as blocker:
        qtbot.keyClick(tab.view, Qt.Key.Key_Escape)
    result = blocker.args[0]
    assert result.cancelled
    filled = len(tab.model.model_cells())
    assert 8 <= filled < 600 and filled == sum(a is not None for a in result.answers)
    assert not tab.model.pending and tab.model.cells[611][1].value == ""
    assert "stopped" in tab.stats.text() and tab.fill_button.isEnabled()
    (run,) = runs
    assert run.status == "cancelled" and len(run.outputs["cells"]) == filled


def test_csv_round_trip_with_drop_and_repairs(qtbot, make_tab, tmp_path):
    tab = make_tab()
    path = tmp_path / "cities.csv"
    path.write_bytes("City,,City\nZürich,Switzerland\nLyon,France,Europe\n".encode("cp1252"))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    tab.dropEvent(drop)
    assert tab.model.columns == ["City", "Column 2", "City (2)"]
    assert tab.model.cells[0][0].value == "Zürich" and tab.model.cells[0][2].value == ""
    assert tab.notice.isVisible() and "cp1252" in tab.notice.text() and "more than once" in tab.notice.text()

    out = tmp_path / "out.csv"
    assert tab.export_csv(out)
    assert read_csv(out).sheet.rows == [["Zürich", "Switzerland", ""], ["Lyon", "France", "Europe"]]
    tab.import_csv(out)
    assert not tab.notice.isVisible()  # a clean UTF-8 file has nothing to repair
    assert to_csv(tab.model.export_sheet()) == out.read_text(encoding="utf-8")

    tab.import_csv(tmp_path / "missing.csv")
    assert tab.error.isVisible() and "Cannot read" in tab.error.text()


def test_unsure_cells_export_empty(qtbot, make_tab, tmp_path):
    tab = make_tab()
    tab.set_sheet(capitals(empty=2))
    fill(qtbot, tab)
    tab.threshold.setValue(1.0)
    out = tmp_path / "out.csv"
    tab.export_csv(out)
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert rows[-1] == ["Greece", ""] and rows[-2] == ["Chile", ""]
    tab.threshold.setValue(0.0)
    tab.export_csv(out)
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert rows[-1][1] == tab.model.cells[11][1].value


def test_paste_a_spreadsheet_then_a_10000_row_block(qtbot, make_tab):
    tab = make_tab()
    tab.set_sheet(Sheet(["A", "B"], [["", ""]]))
    QGuiApplication.clipboard().setText("State\tPopulation\nOhio\t11.80\nUtah\t3.27\n")
    tab.view.setFocus()
    qtbot.keyClick(tab.view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert tab.model.columns == ["State", "Population"] and tab.model.cells[1][0].value == "Utah"

    big = "".join(f"State {i}\t{i / 100:.2f}\n" for i in range(10_000))
    tab.view.setCurrentIndex(QModelIndex())  # no current cell: appended below
    tab.paste_text(big)
    assert tab.model.rowCount() == 10_002 and tab.model.cells[10_001][1].value == "99.99"
    tab.select(0, 1)
    tab.paste_text("1\t2\t3\n")  # wider than the sheet: columns are added
    assert tab.model.columnCount() == 4 and tab.model.cells[0][3].value == "3"


def test_fill_without_a_complete_row_explains(qtbot, make_tab):
    tab = make_tab()
    tab.set_sheet(Sheet(["Country", "Capital"], [["France", ""], ["Japan", ""]]))
    tab.fill_button.click()
    assert tab.error.isVisible() and "complete row" in tab.error.text()
    assert tab.fill_button.isEnabled() and not tab.model.pending


def test_rows_and_columns_can_be_added_removed_and_renamed(qtbot, make_tab):
    tab = make_tab()
    tab.set_sheet(capitals(empty=0))
    tab.select(0, 1)
    tab.add_column_button.click()
    assert tab.model.columns == ["Country", "Capital", "Column 3"]
    tab.model.rename_column(2, "Capital")
    assert tab.model.columns[2] == "Capital (2)"  # names stay unique
    tab.model.set_instruction(2, "in French")
    assert "in French" in tab.model.headerData(2, Qt.Orientation.Horizontal)
    tab.select(0, 2)
    tab.remove_column_button.click()
    tab.select(0, 0)
    tab.add_row_button.click()
    assert tab.model.rowCount() == 13 and tab.model.cells[1][0].value == ""
    tab.select(1, 0)
    tab.remove_row_button.click()
    assert tab.model.rowCount() == 12 and tab.model.columns == ["Country", "Capital"]
    assert [tab.eval_column.itemText(i) for i in range(tab.eval_column.count())] == ["Country", "Capital"]


def test_evaluate_draws_a_line_per_model_and_saves(qtbot, make_tab, tmp_path):
    tab = make_tab(max_tokens=4)
    tab.set_sheet(capitals(empty=0))
    tab.eval_column.setCurrentIndex(1)
    tab.shots.setText("0,1,2")
    with qtbot.waitSignal(tab.eval_finished, timeout=20000) as blocker:
        tab.eval_button.click()
    points = blocker.args[0]
    assert [p.k for p in points] == [0, 1, 2] and all(0 <= p.normalised <= 1 for p in points)
    tab.test_model_id = "tiny-2"
    with qtbot.waitSignal(tab.eval_finished, timeout=20000):
        tab.eval_button.click()
    series = tab.chart.series()
    assert list(series) == ["tiny", "tiny-2"] and [k for k, _ in series["tiny-2"]] == [0, 1, 2]
    assert tab.loads == ["tiny", "tiny-2"]  # the model is cached by id and swapped when it changes
    assert tab.numbers.rowCount() == 6

    png, numbers = tmp_path / "chart.png", tmp_path / "acc.csv"
    assert tab.chart.save_png(png)
    image = QImage(str(png))
    assert image.width() > 300 and image.height() > 200
    assert len({image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}) > 3
    assert tab.save_numbers(numbers)
    lines = numbers.read_text().splitlines()
    assert lines[0] == "model,k,n,exact,normalised,numeric" and len(lines) == 7
    tab.clear_chart_button.click()
    assert tab.chart.series() == {} and tab.numbers.rowCount() == 0


def test_user_edits_ask_for_a_draft_but_model_output_and_restoring_do_not(qtbot, make_tab):
    tab = make_tab()
    tab.set_sheet(capitals(empty=2))
    edits = [lambda: type_into(qtbot, tab, 0, 1, "Lyon"), tab.add_row_button.click,
             lambda: tab.model.set_instruction(1, "in French"), lambda: tab.model.rename_column(0, "Land"),
             lambda: tab.threshold.setValue(0.7), lambda: tab.paste_text("Fiji\tSuva\n"),
             lambda: tab.set_sheet(capitals(empty=2)), lambda: tab.shots.textEdited.emit("0,1")]
    for edit in edits:
        with qtbot.waitSignal(tab.changed, timeout=1000):
            edit()
    runs = []
    tab.run_ended.connect(runs.append)
    with qtbot.assertNotEmitted(tab.changed):
        result = fill(qtbot, tab)
    (run,) = runs
    assert run.mode == "sheet" and run.status == "done" and run.model_id == "tiny"
    assert [(c["row"], c["column"]) for c in run.outputs["cells"]] == [(a.row, a.column) for a in result.answers]

    draft = tab.draft()
    with qtbot.assertNotEmitted(tab.changed):
        tab.restore({}, None)
        assert tab.model.columns == ["Column 1", "Column 2"] and tab.model.rowCount() == 3
        tab.restore({"header": "junk", "rows": 5, "marks": [{"row": "x"}], "threshold": None}, None)
        assert tab.model.columns == ["Column 1", "Column 2"] and tab.threshold.value() == 0.5
        tab.restore(draft, run)
        tab.show_run(run)
    assert tab.model.cells[11][1].answer is not None and tab.threshold.value() == 0.7
    assert tab.draft()["rows"] == draft["rows"]


def test_a_failed_job_is_recorded_with_its_error(qtbot):
    def broken(model_id, on_progress):
        raise KnownError(f"Model not found: {model_id}")

    tab = SheetTab(ParamsPanel(), lambda: "missing", broken)
    qtbot.addWidget(tab)
    runs = []
    tab.run_ended.connect(runs.append)
    tab.set_sheet(capitals(empty=2))
    with qtbot.waitSignal(tab.run_ended, timeout=5000):
        tab.fill_button.click()
    tab.eval_column.setCurrentIndex(1)
    with qtbot.waitSignal(tab.run_ended, timeout=5000):
        tab.eval_button.click()
    tab.shutdown()
    assert [(r.status, r.inputs["kind"], r.error) for r in runs] == [
        ("failed", "fill", "Model not found: missing"), ("failed", "eval", "Model not found: missing")]
    assert runs[0].outputs == {"cells": []} and runs[1].outputs["points"] == []
    assert not tab.error.isHidden() and "Model not found" in tab.error.text() and tab.fill_button.isEnabled()


def test_focus_stays_on_fill_and_the_metric_stays_as_picked(qtbot, make_tab):
    """Issue 16, item 10: after Fill, focus jumped into the "unsure below" box (typing then changed the
    threshold); the Evaluate metric switched itself to "numeric" on a column of numbers after being picked."""
    tab = make_tab()
    tab.set_sheet(capitals(empty=2))
    tab.fill_button.setFocus()
    with qtbot.waitSignal(tab.fill_finished, timeout=20000):
        qtbot.mouseClick(tab.fill_button, Qt.MouseButton.LeftButton)
    qtbot.wait(20)
    assert tab.fill_button.hasFocus() and not tab.threshold.hasFocus()

    tab.set_sheet(Sheet(["Item", "Price"], [[f"item {i}", str(10 * i)] for i in range(1, 9)]))
    tab.eval_column.setCurrentIndex(1)
    tab.shots.setText("0")
    exact = tab.eval_panel.metric_box.findData("exact")
    tab.eval_panel.metric_box.setCurrentIndex(exact)
    tab.eval_panel.metric_box.activated.emit(exact)  # as a user's pick in the list does
    with qtbot.waitSignal(tab.eval_finished, timeout=20000):
        tab.eval_button.click()
    assert tab.eval_panel.metric_box.currentData() == "exact"


def test_a_chart_title_too_long_for_the_chart_is_shortened_not_cut_at_both_ends(qtbot):
    """At 1024 px the chart is ~260 px wide: its centred title had lost both ends ("racy vs example rows —
    normalised m"). It is now shortened at its end, and its tooltip holds it whole."""
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QApplication, QToolTip

    from ui.sheet.chart import AccuracyChart

    chart = AccuracyChart()
    qtbot.addWidget(chart)
    chart.resize(260, 200)
    chart.set_metric("normalised")
    image = chart.grab().toImage()
    title_rows = range(4, chart.fontMetrics().height() + 4)
    inked = [x for x in range(image.width()) if any(image.pixelColor(x, y).lightness() < 128 for y in title_rows)]
    assert inked and inked[0] >= 2  # its first letter is drawn whole, inside the chart
    point = chart.rect().center()
    QApplication.sendEvent(chart, QHelpEvent(QHelpEvent.Type.ToolTip, point, chart.mapToGlobal(point)))
    assert QToolTip.text() == "Accuracy vs example rows — normalised match"
