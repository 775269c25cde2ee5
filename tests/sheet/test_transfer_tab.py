"""The Sheet's Fine-tune (LoRA) option offscreen, on a tiny model through the tab's real worker thread: three curves on
one chart with progress, Stop, the run record, "Save adapter…" and the adapters dialog that deletes it."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from playground.models import adapters
from playground.tasks.sheet_transfer import LABELS
from tests.sheet.conftest import codes, kinds
from ui.common.params_panel import ParamsPanel
from ui.sheet.tab import SheetTab
from ui.shell.adapters_dialog import AdaptersDialog

SCREENSHOT = os.environ.get("PLAYGROUND_SCREENSHOTS")  # a folder: save the chart there to look at it


@pytest.fixture
def tab(qtbot, tiny64):
    def loader(model, on_progress):
        return dataclasses.replace(tiny64, id=model)  # a copy: shutdown unloads it, the session's model stays

    params = ParamsPanel()
    params.max_tokens.setValue(8)
    tab = SheetTab(params, lambda: "tiny", loader)
    qtbot.addWidget(tab)
    tab.resize(1200, 820)
    tab.show()
    runs = []
    tab.run_ended.connect(runs.append)
    tab.runs = runs
    yield tab
    tab.shutdown()


def test_fine_tune_draws_three_curves_at_the_same_ks(qtbot, tab, tmp_path, monkeypatch):
    tab.set_sheet(kinds(12))
    tab.eval_column.setCurrentIndex(1)
    tab.shots.setText("0,1,2,4")
    tab.transfer.controls.fine_tune.setChecked(True)
    tab.transfer.controls.epochs.setValue(30)
    # A random tiny model needs a bolder learning rate than the embedded model's default to learn in 30 steps.
    bold = dataclasses.replace(tab.transfer.controls.settings(), learning_rate=2e-2, rank=16)
    monkeypatch.setattr(tab.transfer.controls, "settings", lambda: bold)
    progress = []
    tab.worker.progress.connect(lambda _tag, p: progress.append(p))  # worker thread: append only
    with qtbot.waitSignal(tab.transfer.finished, timeout=60000) as blocker:
        tab.eval_button.click()
        assert tab.running and tab.stop_button.isEnabled() and not tab.fill_button.isEnabled()
    points = blocker.args[0]
    assert len(points) == 12 and not tab.running
    series = tab.chart.series()
    assert list(series) == list(LABELS.values())  # few-shot, LoRA 0-shot, LoRA + few-shot
    assert all([k for k, _ in line] == [0, 1, 2, 4] for line in series.values())
    assert tab.numbers.rowCount() == 12
    assert tab.chart.title.startswith("Few-shot vs LoRA on 'Kind'")
    assert any(p.train is not None for p in progress)
    lines = {line: dict(pts) for line, pts in series.items()}
    assert lines["LoRA 0-shot"][4] > lines["few-shot"][4]  # trained on 4 rows beats 4 rows in the prompt, here
    assert "training k=1" in tab.stats.text()
    run = tab.runs[-1]
    assert run.inputs["kind"] == "transfer" and run.status == "done" and len(run.outputs["points"]) == 12
    assert run.params["lora"]["epochs"] == 30
    # The chart as a user sees it.
    folder = Path(SCREENSHOT) if SCREENSHOT else tmp_path
    assert tab.grab().save(str(folder / "sheet_transfer_tab.png"))
    # Reopening the run shows the same three lines.
    tab.chart.clear()
    tab.show_run(run)
    assert list(tab.chart.series()) == list(LABELS.values())


def test_stop_during_training_keeps_the_points_so_far(qtbot, tab):
    tab.set_sheet(codes(8))
    tab.eval_column.setCurrentIndex(1)
    tab.shots.setText("0,2,4")
    tab.transfer.controls.fine_tune.setChecked(True)
    tab.transfer.controls.epochs.setValue(200)
    with qtbot.waitSignal(tab.transfer.finished, timeout=60000) as blocker:
        tab.eval_button.click()
        qtbot.waitUntil(lambda: "training step" in tab.stats.text(), timeout=30000)
        tab.stop_button.click()
    points = blocker.args[0]
    assert {p.method for p in points} >= {"few-shot"} and len(points) < 9
    assert tab.stats.text().startswith("stopped") and tab.runs[-1].status == "cancelled"
    assert tab.eval_button.isEnabled() and not tab.transfer.controls.bar.isVisible()


def test_save_adapter_then_delete_it_in_the_dialog(qtbot, tab):
    tab.set_sheet(codes(8))
    tab.eval_column.setCurrentIndex(1)
    tab.transfer.controls.epochs.setValue(2)
    with qtbot.waitSignal(tab.transfer.adapter_saved, timeout=30000) as blocker:
        tab.transfer.train_adapter("codes")
    assert blocker.args == ["tiny+codes"]
    assert tab.runs[-1].inputs["kind"] == "train" and tab.runs[-1].outputs["adapter"] == "tiny+codes"
    assert adapters.find("tiny+codes").meta["rows"] == 8
    dialog = AdaptersDialog()
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == 1 and dialog.table.item(0, 0).text() == "tiny+codes"
    with qtbot.waitSignal(dialog.changed, timeout=2000):
        assert dialog.delete("tiny+codes")
    assert dialog.table.rowCount() == 0 and adapters.list_adapters() == []
    tab.transfer.train_adapter("bad name")
    assert tab.error.isVisible() and "Adapter name" in tab.error.text()
