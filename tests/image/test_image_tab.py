"""The Image tab (pytest-qt, offscreen) on a tiny random SD pipeline: generate, preview, stop, gallery, PNG drop."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from playground import paths
from playground.tasks.image_meta import png_bytes, read_settings
from ui.image.tab import ImageTab
from ui.image.worker import ImageWorker

TIMEOUT = 30_000


@pytest.fixture
def tab(qtbot, tiny_sd_dir: Path):
    from playground.engine.image import load_image_model

    def loader(model_id, on_progress):
        if model_id == "missing-model":
            from playground.errors import ModelNotFound

            raise ModelNotFound("Unknown model 'missing-model'")
        return load_image_model(str(tiny_sd_dir), device="cpu", on_progress=on_progress)

    t = ImageTab(worker=ImageWorker(loader=loader))
    qtbot.addWidget(t)
    t.resize(1000, 700)
    t.prompt.setPlainText("a red circle")
    t.steps.setValue(3)
    t.seed.setValue(5)
    yield t
    t.shutdown()


def run_once(qtbot, tab: ImageTab):
    with qtbot.waitSignal(tab.run_ended, timeout=TIMEOUT) as blocker:
        tab.generate()
    return blocker.args[0]


def test_generate_saves_png_with_settings_and_reports_run(qtbot, tab):
    run = run_once(qtbot, tab)
    assert run.mode == "image" and run.status == "done" and run.inputs["prompt"] == "a red circle"
    [ref] = run.outputs["images"]
    data = (paths.data_dir() / ref["path"]).read_bytes()
    assert ref["path"] == f"images/{ref['sha256']}.png" and hashlib.sha256(data).hexdigest() == ref["sha256"]
    settings = read_settings(data)
    assert settings["seed"] == 5 and settings["steps"] == 3 and settings["prompt"] == "a red circle"
    assert run.params["seed"] == 5 and run.timings["steps"] == 3
    assert tab.gallery.list.count() == 1
    assert tab.progress.value() == 3  # the preview followed every step
    assert tab.preview.pixmap() is not None and not tab.preview.pixmap().isNull()
    assert tab.generate_button.isEnabled() and not tab.stop_button.isEnabled()


def test_ctrl_enter_generates_and_esc_stops(qtbot, tab):
    from PySide6.QtGui import QShortcut

    keys = {sc.key().toString(): sc for sc in tab.findChildren(QShortcut)}
    assert {"Ctrl+Return", "Ctrl+Enter", "Esc"} <= set(keys)
    tab.steps.setValue(400)
    with qtbot.waitSignal(tab.run_ended, timeout=TIMEOUT) as blocker:
        keys["Ctrl+Return"].activated.emit()
        qtbot.waitUntil(lambda: tab.progress.value() >= 1, timeout=TIMEOUT)
        keys["Esc"].activated.emit()
    assert blocker.args[0].status == "cancelled"


def test_stop_saves_nothing(qtbot, tab):
    tab.steps.setValue(400)
    tab.generate()
    qtbot.waitUntil(lambda: tab.progress.value() >= 2, timeout=TIMEOUT)
    with qtbot.waitSignal(tab.run_ended, timeout=TIMEOUT) as blocker:
        tab.stop()
    run = blocker.args[0]
    assert run.status == "cancelled" and run.outputs["images"] == []
    assert tab.progress.value() < 400 and tab.gallery.list.count() == 0
    assert not (paths.data_dir() / "images").exists() or not any((paths.data_dir() / "images").iterdir())


def test_gallery_click_restores_settings(qtbot, tab):
    run_once(qtbot, tab)
    tab.prompt.setPlainText("something else")
    tab.seed.setValue(-1)
    tab.steps.setValue(9)
    item = tab.gallery.list.item(0)
    rect = tab.gallery.list.visualItemRect(item)
    tab.show()
    qtbot.waitExposed(tab)
    qtbot.mouseClick(tab.gallery.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert tab.prompt.toPlainText() == "a red circle"
    assert tab.seed.value() == 5 and tab.steps.value() == 3
    tab.gallery.copy_seed()
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.clipboard().text() == "5"
    tab.gallery.delete_selected()
    assert tab.gallery.list.count() == 0


def test_drop_png_loads_its_settings(qtbot, tab, tmp_path):
    png = tmp_path / "from-a1111.png"
    png.write_bytes(png_bytes(Image.new("RGB", (64, 64), "blue"), {
        "prompt": "a blue square on a yellow background", "negative_prompt": "red", "steps": 12, "guidance": 4.5,
        "seed": 99, "width": 64, "height": 48, "scheduler": "Euler a", "model": "demo-shapes"}))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(png))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    tab.dropEvent(event)
    assert tab.prompt.toPlainText() == "a blue square on a yellow background"
    assert tab.negative.text() == "red" and tab.steps.value() == 12 and tab.guidance.value() == 4.5
    assert tab.seed.value() == 99 and tab.height_box.value() == 48 and tab.scheduler.currentText() == "Euler a"
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    assert not tab.load_png_settings(plain) and "no generation settings" in tab.error.text()


def test_draft_restore_and_show_run(qtbot, tab):
    run = run_once(qtbot, tab)
    draft = tab.draft()
    assert draft["prompt"] == "a red circle" and len(draft["gallery"]) == 1
    tab.restore({}, None)
    assert tab.prompt.toPlainText() == "" and tab.gallery.list.count() == 0
    tab.restore(draft, None)
    assert tab.prompt.toPlainText() == "a red circle" and tab.gallery.list.count() == 1
    tab.restore({}, run)  # no draft gallery: the last run's images come back
    assert tab.gallery.list.count() == 1
    tab.prompt.clear()
    tab.show_run(run)
    assert tab.prompt.toPlainText() == "a red circle" and tab.gallery.list.count() == 2


def test_demo_label_and_failure(qtbot, tab):
    assert tab.mode == "image"
    tab.show()
    qtbot.waitExposed(tab)
    assert tab.demo_note.isVisible()  # demo-shapes is the default model
    tab.model.setCurrentText("missing-model")
    assert not tab.demo_note.isVisible()
    with qtbot.waitSignal(tab.run_ended, timeout=TIMEOUT) as blocker:
        tab.generate()
    assert blocker.args[0].status == "failed" and "missing-model" in tab.error.text()
    assert tab.generate_button.isEnabled()


def test_empty_prompt_is_refused(qtbot, tab):
    tab.prompt.clear()
    tab.generate()
    assert not tab.running and "prompt" in tab.error.text().lower()


def test_run_images_survive_store_export_and_import(qtbot, tab, tmp_path):
    from playground.store.db import open_database
    from playground.store.repository import SessionStore
    from playground.store.transfer import export_session, import_session

    run = run_once(qtbot, tab)
    store = SessionStore(open_database(tmp_path / "db.sqlite"))
    try:
        sid = store.create("pictures", mode="image").id
        store.add_run(sid, run)
        store.save_draft(sid, "image", tab.draft())
        out = export_session(store, sid, tmp_path / "export")
        [ref] = run.outputs["images"]
        assert (out.parent / ref["path"]).is_file()
        imported = import_session(store, out.parent)
        [back] = store.runs(imported.id, "image")
        assert back.outputs["images"] == run.outputs["images"] and back.params["seed"] == 5
    finally:
        store.db.dispose()


def test_progress_caption_and_a_grid_cell_show_what_the_user_set(qtbot, tab):
    """Issue 16, item 10: the bar said "0 / 100 steps" with steps at 20; the negative prompt was not in the
    caption; a Compare grid cell loaded its settings but left the previous image in the preview."""
    tab.steps.setValue(20)
    assert tab.progress.text() == "0 / 20 steps"
    tab.steps.setValue(3)
    tab.negative.setText("blue")
    run = run_once(qtbot, tab)
    assert tab.progress.text() == "3 / 3 steps"
    assert "a red circle — not: blue — seed 5, 3 steps" in tab.caption.text()
    shown = tab.preview.pixmap().toImage()

    tab.open_cell({"prompt": "a green square", "seed": 9, "steps": 2, "guidance": 1.0})  # a cell not run yet
    assert tab.prompt.toPlainText() == "a green square" and tab.seed.value() == 9
    assert tab.preview.pixmap().isNull() and tab.caption.text() == ""  # not the old image under new settings
    [ref] = run.outputs["images"]
    tab.open_cell({"prompt": "a red circle", "seed": 5, "steps": 3, "file": ref["path"]})  # a cell with its PNG
    assert tab.preview.pixmap().toImage() == shown and "seed 5" in tab.caption.text()
