"""The Compare tab with pytest-qt: columns stream on the tab's own thread, diffs and stats show, sessions
round-trip, Stop keeps partial output, the image grid fills and exports."""

from __future__ import annotations

import pytest

from ui.compare_tab import CompareTab
from ui.params_panel import ParamsPanel


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
