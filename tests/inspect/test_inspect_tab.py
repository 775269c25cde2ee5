"""The Inspect tab offscreen, on a tiny llama through its real worker thread: inspect, pick tokens, layers and heads
in every view, layer-by-layer predictions on demand, probe with CSV/PNG export, errors, and sessions."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage

from playground.domain.inspect import Inspection
from playground.engine.inspect.model import load_inspect_model
from playground.tasks.probe import probe_csv
from ui.inspect.heads_grid import AVERAGE
from ui.inspect.heatmap import visible
from ui.inspect.lens_view import WINDOW
from ui.inspect.tab import InspectTab
from ui.inspect.worker import InspectWorker

SOURCE = "Country: France\nCapital: Paris\n\n"
PROMPT = "Country: Italy\nCapital:"


@pytest.fixture(scope="module")
def tiny_inspect(tiny_model_dir):
    return load_inspect_model("tiny", tiny_model_dir, device="cpu")


@pytest.fixture
def make_tab(qtbot, tiny_inspect):
    tabs = []

    def make(prompt_inputs=None):
        loads = []

        def loader(model_id, on_progress):
            loads.append(model_id)
            return dataclasses.replace(tiny_inspect, id=model_id)  # the tab unloads its own copy

        tab = InspectTab(lambda: "tiny", prompt_inputs, InspectWorker(loader))
        tab.loads = loads
        qtbot.addWidget(tab)
        tab.resize(1280, 800)
        with qtbot.waitActive(tab):
            tab.show()
            tab.activateWindow()
        tabs.append(tab)
        return tab

    yield make
    for tab in tabs:
        tab.shutdown()


def inspect_and_wait(qtbot, tab) -> Inspection:
    tab.source.setPlainText(SOURCE)
    tab.prompt.setPlainText(PROMPT)
    with qtbot.waitSignal(tab.run_ended, timeout=20000) as blocker:
        tab.prompt.setFocus()
        qtbot.keyClick(tab.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert blocker.args[0].status == "done", blocker.args[0].error
    tab.last_record = blocker.args[0]
    return tab.inspection


def click(qtbot, widget, point: QPoint) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=point)


def test_inspect_shows_the_strip_every_head_and_the_matrix_for_the_last_token(qtbot, make_tab):
    tab = make_tab()
    qtbot.waitUntil(lambda: tab.loads == ["tiny"], timeout=10000)  # preloaded when the tab was shown
    insp = inspect_and_wait(qtbot, tab)
    t = len(SOURCE + PROMPT)
    assert len(insp) == t and tab.loads == ["tiny"]
    view = tab.attention
    assert view.strip.tokens == list(insp.tokens) and view.strip.query == t - 1
    # layer 0 (no draft said otherwise), averaged over heads
    np.testing.assert_allclose(view.strip.weights, insp.attention[view.layer].mean(axis=0)[t - 1], rtol=1e-6)
    assert view.head == AVERAGE and view.head_box.currentText() == "average over heads"
    assert len(view.grid.images) == insp.layers * (insp.heads + 1)
    assert view.matrix.matrix.shape == (t, t) and view.matrix.query == t - 1
    assert view.strip.kinds[0] == "source" and view.strip.kinds[-1] == "prompt"
    assert "eager attention" in tab.status.text() and "eager attention" in tab.note.text()
    record = tab.last_record  # what the session saves: inputs, tokens, the last position's lens
    assert record.mode == "inspect" and record.inputs["prompt"] == PROMPT and record.outputs["tokens"] == list(
        insp.tokens)
    assert len(record.outputs["last_lens"]) == insp.layers + 1 and "attention" not in record.outputs


def test_clicking_a_token_a_head_and_a_matrix_row_updates_every_view(qtbot, make_tab):
    tab = make_tab()
    insp = inspect_and_wait(qtbot, tab)
    view = tab.attention
    strip = view.strip
    click(qtbot, strip, strip.chip_rect(5).center())
    assert strip.query == 5 and view.matrix.query == 5 and view.grid.query == 5
    np.testing.assert_allclose(strip.weights, insp.attention[view.layer].mean(axis=0)[5], rtol=1e-6)
    assert "token 5" in strip.tooltip_at(2) and "%" in strip.tooltip_at(2)
    assert "masked" in strip.tooltip_at(9)  # after the selected token
    # a head in the grid: layer 1, head 2
    click(qtbot, view.grid, view.grid.cell_rect(1, 2).center())
    assert (view.layer, view.head) == (1, 2) and view.head_box.currentText() == "head 2"
    assert view.layer_box.value() == 1
    np.testing.assert_allclose(strip.weights, insp.attention[1, 2, 5], rtol=1e-6)
    assert "layer 1, head 2" in strip.caption
    cell = view.grid.cell_rect(1, 2)
    assert "causal mask" in view.grid.tooltip_at(cell.right() - 2, cell.top() + 2)  # top-right: the future
    assert "→" in view.grid.tooltip_at(cell.left() + 2, cell.bottom() - 2)
    # the layer spin box and the head combo drive it too
    view.layer_box.setValue(0)
    view.head_box.setCurrentIndex(0)
    view.head_box.activated.emit(0)
    assert (view.layer, view.head) == (0, AVERAGE)
    # a row of the big matrix selects that token
    r = view.matrix.plot_rect()
    t = len(insp)
    click(qtbot, view.matrix, QPoint(r.x() + 2, r.y() + int((12.5 / t) * r.height())))
    assert strip.query == 12
    assert "cannot attend" in view.matrix.tooltip_at(r.right() - 2, r.y() + 2)


def test_layer_by_layer_computes_positions_on_demand_and_shows_the_models_answer(qtbot, make_tab):
    tab = make_tab()
    insp = inspect_and_wait(qtbot, tab)
    t = len(insp)
    lens = tab.lens
    assert lens.window() == list(range(t - WINDOW, t)) and set(insp.lens) == set(lens.window())
    final = insp.lens[t - 1][-1].top[0]
    top_cell = lens.cell(insp.layers, t - 1)
    assert top_cell.text().startswith(visible(final.text)) and top_cell.font().bold()
    assert lens.table.rowCount() == insp.layers + 1 and lens.table.verticalHeaderItem(0).text() == "output"
    assert "predicts" in lens.title.text()
    # pick an early token: its positions are computed by the worker and fill in
    tab.views.setCurrentWidget(lens)
    click(qtbot, tab.attention.strip, tab.attention.strip.chip_rect(3).center())
    assert lens.window() == [0, 1, 2, 3]
    qtbot.waitUntil(lambda: all(p in lens.lens for p in range(4)), timeout=10000)
    qtbot.waitUntil(lambda: lens.cell(0, 3).text() != "…", timeout=5000)
    expected = lens.lens[3][0].top[0]
    assert lens.cell(0, 3).text().startswith(visible(expected.text))
    assert "embeddings" in lens.cell(0, 3).toolTip()
    # clicking a column header selects its token everywhere
    lens.table.horizontalHeader().sectionClicked.emit(1)
    assert tab.attention.strip.query == 1


def test_probe_table_chart_and_exports(qtbot, make_tab, tmp_path):
    tab = make_tab()
    panel = tab.probe
    panel.template.setText("The {job} was a")
    panel.values.setText("nurse, doctor, pilot")
    panel.continuations.setText(" man, woman")
    assert not panel.export_csv.isEnabled()
    with qtbot.waitSignal(tab.run_ended, timeout=20000) as blocker:
        panel.run_button.click()
    run = blocker.args[0]
    assert run.mode == "inspect" and run.inputs["kind"] == "probe" and len(run.outputs["rows"]) == 6
    assert panel.table.rowCount() == 3 and panel.table.columnCount() == 2
    assert panel.table.verticalHeaderItem(1).text() == "doctor"
    assert panel.table.horizontalHeaderItem(1).text() == "' woman'"
    assert panel.chart.values() == ["nurse", "doctor", "pilot"]
    assert panel.export_csv.isEnabled() and panel.export_png.isEnabled()
    out = tmp_path / "probe.csv"
    panel.save_csv(out)
    assert out.read_text() == probe_csv(panel.rows)
    assert [r[0] for r in csv.reader(out.open())][1:] == ["nurse", "nurse", "doctor", "doctor", "pilot", "pilot"]
    png = tmp_path / "probe.png"
    assert panel.chart.save_png(png)
    image = QImage(str(png))
    assert image.width() > 300 and image.pixelColor(image.width() // 2, image.height() // 2).isValid()


def test_stop_ends_a_long_probe_with_the_rows_so_far(qtbot, make_tab):
    tab = make_tab()
    qtbot.waitUntil(lambda: tab.loads == ["tiny"], timeout=10000)
    tab.probe.values.setText(", ".join(f"v{i}" for i in range(200)))
    tab.probe.continuations.setText(",".join(f" c{i}" for i in range(20)))  # 4,000 scores
    with qtbot.waitSignal(tab.run_ended, timeout=60000) as blocker:
        tab.probe.run_button.click()
        qtbot.wait(200)
        tab.stop_button.click()
    run = blocker.args[0]
    assert run.status == "cancelled" and len(run.outputs.get("rows", [])) < 4000
    assert tab.probe.table.rowCount() == len({r["value"] for r in run.outputs.get("rows", [])})
    assert "stopped" in tab.status.text() and not tab.running


def test_bad_inputs_are_named_and_nothing_runs(qtbot, make_tab):
    tab = make_tab()
    tab.run_button.click()
    assert tab.error.isVisible() and "prompt" in tab.error.text() and not tab.running
    tab.probe.template.setText("no slot")
    tab.probe.run_button.click()
    assert "exactly one slot" in tab.error.text() and not tab.running


def test_from_prompt_tab_copies_its_inputs_and_new_tokens_are_generated(qtbot, make_tab):
    tab = make_tab(prompt_inputs=lambda: ("ab", "cd", "ef"))
    tab.from_prompt.click()
    assert (tab.source.toPlainText(), tab.prompt.toPlainText(), tab.completion.toPlainText()) == ("ab", "cd", "ef")
    tab.new_tokens.setValue(3)
    with qtbot.waitSignal(tab.run_ended, timeout=20000):
        tab.run_button.click()
    kinds = tab.attention.strip.kinds
    assert kinds[:2] == ["source"] * 2 and kinds[2:4] == ["prompt"] * 2 and kinds[4:6] == ["completion"] * 2
    assert kinds[6:] == ["generated"] * tab.inspection.generated and tab.inspection.generated > 0


def test_draft_restore_and_reopening_saved_runs(qtbot, make_tab):
    tab = make_tab()
    insp = inspect_and_wait(qtbot, tab)
    with qtbot.waitSignal(tab.run_ended, timeout=5000) as blocker:
        tab.run_button.click()
    inspect_record = blocker.args[0]
    tab.probe.values.setText("a, b")
    with qtbot.waitSignal(tab.run_ended, timeout=20000) as blocker:
        tab.probe.run_button.click()
    probe_record = blocker.args[0]
    click(qtbot, tab.attention.grid, tab.attention.grid.cell_rect(1, 3).center())
    draft = tab.draft()
    assert draft["prompt"] == PROMPT and draft["probe"]["values"] == ["a", "b"] and draft["head"] == 3

    other = make_tab()
    other.restore(draft, inspect_record)
    assert other.source.toPlainText() == SOURCE and other.prompt.toPlainText() == PROMPT
    assert other.probe.values.text() == "a, b" and (other.attention.layer, other.attention.head) == (1, 3)
    # the saved run: its tokens (no weights until recomputed) and the last position's layer-by-layer guesses
    assert other.inspection is None and other.attention.strip.tokens == list(insp.tokens)
    assert other.lens.window() == [len(insp) - 1]
    answer = insp.lens[len(insp) - 1][-1].top[0]
    assert other.lens.cell(insp.layers, len(insp) - 1).text().startswith(visible(answer.text))
    assert "press Inspect" in other.status.text()
    # re-opening a probe shows its rows; re-opening an inspection recomputes it
    other.show_run(probe_record)
    assert other.views.currentWidget() is other.probe and other.probe.table.rowCount() == 2
    with qtbot.waitSignal(other.run_ended, timeout=20000):
        other.show_run(inspect_record)
    assert other.inspection is not None and other.inspection.token_ids == insp.token_ids
    np.testing.assert_allclose(other.inspection.attention, insp.attention)
