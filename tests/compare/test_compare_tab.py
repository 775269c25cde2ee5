"""The Compare tab with pytest-qt: columns stream on the tab's own thread, diffs and stats show, sessions
round-trip, Stop keeps partial output, the image grid fills and exports."""

from __future__ import annotations

import pytest

from ui.common.params_panel import ParamsPanel
from ui.compare.tab import CompareTab


@pytest.fixture
def tab(qtbot, tiny_model_dir, path_loader):
    params = ParamsPanel()
    params.max_tokens.setValue(8)
    qtbot.addWidget(params)
    t = CompareTab(params, lambda: str(tiny_model_dir), text_loader=path_loader, budget_bytes=2**30)
    qtbot.addWidget(t)
    t.resize(1200, 700)
    yield t
    t.shutdown()


def test_run_all_fills_columns_with_stats_diff_and_saves_a_run(qtbot, tab, tmp_path):
    tab.prompt.setPlainText("The cat")
    tab.set_columns([{"temperature": 0.0}, {"temperature": 1.5, "seed": 7}, {"temperature": 0.0}])
    tab.probabilities.setChecked(True)
    with qtbot.waitSignal(tab.run_ended, timeout=30_000) as blocker:
        tab.run_all()
    run = blocker.args[0]
    assert run.mode == "compare" and run.status == "done" and len(run.outputs["columns"]) == 3
    assert [c.get("temperature") for c in run.inputs["columns"]] == [0.0, 1.5, 0.0]
    a, b, c = tab.columns
    assert a.text() == run.outputs["columns"][0]["text"] and a.text()
    assert c.text() == a.text() and c.diff_marked_text() == []  # same greedy output: nothing marked
    assert "tok/s" in a.stats.text() and "TTFT" in a.stats.text() and "mean log p" in a.stats.text()
    assert a.output.background_at(0).alpha() > 0  # probability colouring
    assert sum("★" in col.title.text() for col in tab.columns) == 1
    if b.text().split() != a.text().split():
        assert b.diff_marked_text()
    tab.grab().save(str(tmp_path / "compare.png"))


def test_clicking_run_all_runs_every_column(qtbot, tab):
    """The button, not only Ctrl+Enter: its clicked(bool) once reached run_all's column list and raised."""
    from PySide6.QtCore import Qt

    tab.show()
    tab.prompt.setPlainText("The cat")
    with qtbot.waitSignal(tab.run_ended, timeout=30_000) as blocker:
        qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0].status == "done"
    assert all(column.text() for column in tab.columns)


def test_duplicate_sweep_and_session_round_trip(qtbot, tab, tiny_model_dir):
    tab.columns[0].settings.setText("temperature=0.3,seed=4")
    tab.columns[0].duplicate_requested.emit(tab.columns[0])
    assert len(tab.columns) == 3 and tab.columns[1].spec() == {"temperature": 0.3, "seed": 4}
    tab.sweep_key.setCurrentText("top_p")
    tab.sweep_values.setText("0.5, 0.9, 1")
    tab.make_sweep()
    assert [c.spec() for c in tab.columns] == [{"temperature": 0.3, "seed": 4, "top_p": v} for v in (0.5, 0.9, 1.0)]
    tab.columns[2].reference.setChecked(True)
    assert tab.reference_index() == 2
    draft = tab.draft()
    tab.set_columns([{}, {}])
    tab.restore(draft, None)
    assert [c.spec()["top_p"] for c in tab.columns] == [0.5, 0.9, 1.0] and tab.reference_index() == 2


def test_stop_mid_comparison_and_rerun_one_column(qtbot, tab):
    tab.params.max_tokens.setValue(60)
    tab.prompt.setPlainText("abc")
    tab.set_columns([{"temperature": 0.0}, {"temperature": 0.0}])
    tab.worker.token.connect(tab.stop)  # the first token stops the run
    with qtbot.waitSignal(tab.run_ended, timeout=30_000) as blocker:
        tab.run_all()
    run = blocker.args[0]
    assert run.status == "cancelled" and not tab.running
    assert len(tab.columns[0].result["tokens"]) < 60 and "stopped" in tab.columns[0].stats.text()
    assert "error" in tab.columns[1].result  # never started
    tab.worker.token.disconnect(tab.stop)
    with qtbot.waitSignal(tab.run_ended, timeout=30_000) as blocker:
        tab.rerun_column(1)
    assert blocker.args[0].outputs["columns"][1]["finish_reason"] == "length"
    assert tab.columns[0].result["finish_reason"] == "cancelled"  # the other column kept its output


def test_show_run_restores_outputs(qtbot, tab):
    tab.prompt.setPlainText("hi")
    with qtbot.waitSignal(tab.run_ended, timeout=30_000) as blocker:
        tab.run_all()
    run = blocker.args[0]
    texts = [c.text() for c in tab.columns]
    tab.set_columns([{}, {}])
    tab.show_run(run)
    assert [c.text() for c in tab.columns] == texts and "tok/s" in tab.columns[1].stats.text()


def test_image_grid_fills_cells_opens_settings_and_exports(qtbot, tab, tiny_sd_dir, tmp_path):
    from PIL import Image

    grid = tab.image_grid
    grid.model.setText(str(tiny_sd_dir))
    grid.steps.setValue(2)
    grid.x_axis.setCurrentText("seed")
    grid.x_values.setText("1, 2")
    grid.y_axis.setCurrentText("guidance")
    grid.y_values.setText("1, 3")
    with qtbot.waitSignal(tab.run_ended, timeout=60_000) as blocker:
        grid.run_grid()
    assert blocker.args[0].inputs["kind"] == "image" and len(grid.images) == 4
    assert all(cell.pixmap() is not None and not cell.pixmap().isNull() for cell in grid.cells.values())
    with qtbot.waitSignal(tab.open_image_settings, timeout=1000) as opened:
        grid.cells[(1, 0)].clicked.emit(1, 0)
    assert opened.args[0]["seed"] == 1 and opened.args[0]["guidance"] == 3.0
    grid.export_png(str(tmp_path / "grid.png"))
    out = Image.open(tmp_path / "grid.png")
    assert out.width > 2 * 64 and out.height > 2 * 64


def test_rerun_button_runs_only_that_column(qtbot, tab):
    tab.prompt.setPlainText("The cat")
    tab.set_columns([{"temperature": 0.0}, {"temperature": 0.0}])
    with qtbot.waitSignal(tab.run_ended, timeout=30_000):
        tab.run_all()
    first = tab.columns[0].text()
    tab.columns[1].settings.setText("temperature=1.5,seed=3")
    with qtbot.waitSignal(tab.run_ended, timeout=30_000) as blocker:
        tab.columns[1].rerun_button.click()
    assert tab.columns[0].text() == first  # untouched
    assert blocker.args[0].inputs["columns"][1].get("temperature") == 1.5


def test_layout_variants_render_side_by_side_and_stop(qtbot, tmp_path, path_loader):
    from tests.tiny import build_tiny_llama

    model = str(build_tiny_llama(tmp_path / "long", context=2048))
    params = ParamsPanel()
    qtbot.addWidget(params)
    t = CompareTab(params, lambda: model, text_loader=path_loader, budget_bytes=2**30)
    qtbot.addWidget(t)
    try:
        view = t.layouts
        view.description.setText("A heading Hello")
        assert len(view.variants) >= 2
        with qtbot.waitSignal(view.run_ended, timeout=60_000) as blocker:
            view.run_variants()
            qtbot.waitUntil(lambda: view.running, timeout=5000)
            t.stop()  # Stop covers layout variants too
        run = blocker.args[0]
        assert run.inputs["kind"] == "layout" and len(run.outputs["html"]) == len(view.variants)
        assert run.status == "cancelled" and not view.running
        with qtbot.waitSignal(view.run_ended, timeout=60_000) as blocker:
            view.run_variants()
        assert blocker.args[0].status == "done"
        assert all(v.source.toPlainText() == v.html for v in view.variants)
    finally:
        t.shutdown()
