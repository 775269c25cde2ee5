"""Models the user brings, in the window: dropped on it (a .gguf file or a model folder), taken off the list again
from the "Add model…" menu (the file stays), and marked when the file has gone from where it was added from."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QToolButton

from playground.cli.main import main as cli_main
from playground.models.embedded import EMBEDDED_ID
from tests.common.scripted import ScriptedRunner
from tests.gguf_files import header_only_gguf
from ui.shell.main_window import MainWindow


def _mime(*paths: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def _send(widget, kind: str, mime: QMimeData) -> bool:
    """Deliver a drag-enter or drop event as Qt does (an ignored one goes on to the parents); was it accepted?"""
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    event = QDragEnterEvent(QPoint(5, 5), *args) if kind == "enter" else QDropEvent(QPointF(5, 5), *args)
    event.ignore()
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


def _drag_enter(widget, mime: QMimeData) -> bool:
    return _send(widget, "enter", mime)


def _drop(widget, mime: QMimeData) -> bool:
    return _send(widget, "drop", mime)


def _window(qtbot) -> tuple[MainWindow, ScriptedRunner]:
    runner = ScriptedRunner([" x"])
    window = MainWindow(runner, autoload=False)
    qtbot.addWidget(window)
    return window, runner


def _remove_action(window: MainWindow):
    menu = next(b for b in window.findChildren(QToolButton) if b.text() == "Add model…").menu()
    menu.aboutToShow.emit()  # what opening the menu does: the action names the chosen model
    return next(a for a in menu.actions() if a.text().startswith("Remove"))


def test_a_gguf_and_a_folder_dropped_on_the_window_are_added_and_the_last_is_chosen(qtbot, tmp_path):
    gguf = tmp_path / "My-Model.Q4_K_M.gguf"
    header_only_gguf(gguf)
    folder = tmp_path / "tiny-folder"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    window, _ = _window(qtbot)
    assert _drag_enter(window, _mime(gguf, folder))
    assert _drop(window, _mime(gguf, folder))
    qtbot.waitUntil(lambda: window.current_model() == "tiny-folder")  # each checked off the GUI thread, in order
    ids = [window.model_picker.itemData(i) for i in range(window.model_picker.count())]
    assert "My-Model.Q4_K_M" in ids and "tiny-folder" in ids
    assert window.current_model() == "tiny-folder"
    window.close()


def test_other_files_are_not_taken_as_models(qtbot, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    window, _ = _window(qtbot)
    count = window.model_picker.count()
    assert not _drag_enter(window, _mime(text))
    assert not _drop(window, _mime(text))
    assert window.model_picker.count() == count
    window.close()


def test_the_sheet_tab_leaves_a_dropped_model_to_the_window(qtbot, tmp_path):
    gguf = tmp_path / "m.gguf"
    header_only_gguf(gguf)
    table = tmp_path / "t.csv"
    table.write_text("Country,Capital\nFrance,Paris\n")
    window, _ = _window(qtbot)
    tab = window.sheet_tab
    columns = list(tab.model.columns)
    # Qt hands an event the tab ignores on to its parents: the window adds the model, the grid stays as it was
    assert _drag_enter(tab, _mime(gguf)) and _drop(tab, _mime(gguf))
    qtbot.waitUntil(lambda: window.current_model() == "m")
    assert list(tab.model.columns) == columns
    assert _drag_enter(tab, _mime(table)) and _drop(tab, _mime(table))  # a table still goes to the sheet
    assert list(tab.model.columns) == ["Country", "Capital"]
    assert window.current_model() == "m"
    window.close()


def test_a_model_dropped_on_a_text_field_is_added_not_pasted(qtbot, tmp_path):
    gguf = tmp_path / "pasted.gguf"
    header_only_gguf(gguf)
    window, _ = _window(qtbot)
    editor = window.prompt_tab.source
    editor.setPlainText("Country: France")
    target = editor.viewport()
    assert _drag_enter(target, _mime(gguf)) and _drop(target, _mime(gguf))
    qtbot.waitUntil(lambda: window.current_model() == "pasted")
    assert editor.toPlainText() == "Country: France"
    text = QMimeData()
    text.setText("Capital: Paris")
    assert editor.canInsertFromMimeData(text)  # text is still dropped into the editor
    window.close()


def test_removing_the_chosen_model_forgets_it_and_keeps_its_file(qtbot, tmp_path):
    gguf = tmp_path / "bring.gguf"
    header_only_gguf(gguf)
    window, runner = _window(qtbot)
    window.add_model(str(gguf))
    qtbot.waitUntil(lambda: window.current_model() == "bring")
    action = _remove_action(window)
    assert action.isEnabled() and action.text() == "Remove bring from the list"
    action.trigger()
    assert window.model_picker.findData("bring") < 0
    assert window.current_model() == EMBEDDED_ID
    assert gguf.is_file()
    assert "bring" in window.statusBar().currentMessage() and "not touched" in window.statusBar().currentMessage()
    # the embedded model is not the user's to remove
    assert not _remove_action(window).isEnabled()
    window.close()


def test_a_model_whose_file_is_gone_is_marked_in_the_picker_and_the_cli(qtbot, tmp_path, capsys):
    gguf = tmp_path / "gone.gguf"
    header_only_gguf(gguf)
    window, _ = _window(qtbot)
    window.add_model(str(gguf))
    qtbot.waitUntil(lambda: window.current_model() == "gone")
    gguf.unlink()
    window.refresh_models()
    index = window.model_picker.findData("gone")
    assert index >= 0 and window.model_picker.itemText(index).endswith("(file missing)")
    window.close()
    capsys.readouterr()
    assert cli_main(["models"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("gone "))
    assert f"(missing: {gguf})" in line
    assert cli_main(["models", "--json"]) == 0
    entry = next(m for m in json.loads(capsys.readouterr().out) if m["id"] == "gone")
    assert entry["ready"] is False and "missing" not in entry  # the JSON shape scripts read stays as it was


def test_a_damaged_gguf_is_not_added_and_a_warning_says_why(qtbot, tmp_path):
    """A truncated download had been put on the list, loaded (the model before it freed), and failed on every pick
    with a reason cut off in the status bar; now it is refused when added, the reason shown whole."""
    cut = header_only_gguf(tmp_path / "cut.gguf")
    cut.write_bytes(cut.read_bytes()[:40])  # a download that stopped in the metadata
    window, _ = _window(qtbot)
    before = window.current_model()
    window.add_model(str(cut))
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "warning") is not None)
    assert window.model_picker.findData("cut") < 0 and window.current_model() == before
    box = window.findChild(QMessageBox, "warning")
    assert box is not None and box.isVisible() and box.windowTitle() == "Model not added"
    assert "cut.gguf is not a valid GGUF file" in box.text()
    assert window.statusBar().currentMessage().startswith("Not added: cut.gguf")
    box.close()
    window.close()


def test_a_model_that_does_not_load_says_why_in_a_warning(qtbot, tmp_path):
    """Picking a model that fails to load (here a file that was whole when added, then overwritten by a GGUF with
    no sizes): the reason is shown whole."""
    from playground.runtime.runner import EngineRunner

    window = MainWindow(EngineRunner(device="cpu"), autoload=False)
    qtbot.addWidget(window)
    window.registry.add(header_only_gguf(tmp_path / "empty.gguf", sizes=False))
    window.refresh_models(select="empty")
    with qtbot.waitSignal(window.bridge.load_failed, timeout=120000):
        window.model_picker.activated.emit(window.model_picker.currentIndex())  # what picking it does
    box = window.findChild(QMessageBox, "warning")
    assert box is not None and box.windowTitle() == "Model not loaded"
    assert box.text() == "empty.gguf: the file's llama.embedding_length is missing: not a complete llama model"
    assert window.model_label.text() == "model: not loaded"
    box.close()
    window.close()


def test_the_menu_bar_model_menu_adds_and_removes_models_too(qtbot, tmp_path):
    """Adding a model was only on the toolbar button; the Model menu (Alt+M) now holds the same actions."""
    window, _ = _window(qtbot)
    window.add_model(str(header_only_gguf(tmp_path / "kept.gguf")))
    qtbot.waitUntil(lambda: window.current_model() == "kept")
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Model")
    menu.aboutToShow.emit()
    texts = [a.text() for a in menu.actions()]
    assert "Add &GGUF file…" in texts and "Add model &folder (safetensors or GGUF)…" in texts
    assert "Remove kept from the list" in texts and any(t.startswith("&Precision") for t in texts)
    window.close()


def test_adding_a_gguf_while_the_kernels_build_shows_the_build_in_the_status_bar(qtbot, tmp_path, monkeypatch):
    """A first run builds the CPU kernels inside "Add model" (the header's vocabulary is read through them; a minute
    or more): the status bar says so, with the share done, where "Adding …" had stood still that long."""
    import threading

    from playground.domain.jobs import ProgressEvent
    from playground.engine.fast import kernels

    gate = threading.Event()

    def building(on_progress) -> bool:  # a build on its way: two reports, then it goes on until the test says
        on_progress(ProgressEvent(kernels.BUILD_STAGE, 0.0))
        on_progress(ProgressEvent(kernels.BUILD_STAGE, 0.42))
        gate.wait(20)
        return kernels.available()

    monkeypatch.setattr(kernels, "prepare", building)
    gguf = header_only_gguf(tmp_path / "Brought.Q4_K_M.gguf")
    window, _ = _window(qtbot)
    window.add_model(str(gguf))
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == f"{kernels.BUILD_STAGE}: 42%")
    assert window.model_picker.findData("Brought.Q4_K_M") < 0  # not on the list before its header is read
    gate.set()
    qtbot.waitUntil(lambda: window.current_model() == "Brought.Q4_K_M")
    window.close()


def test_a_folder_of_gguf_files_dropped_on_the_window_adds_its_model(qtbot, tmp_path, monkeypatch):
    """A GGUF repository's download (a folder) dropped on the window: its one model is added and chosen; a folder of
    several quantizations is not guessed at: the file dialog opens there, and the file picked is added."""
    one = tmp_path / "downloaded"
    one.mkdir()
    header_only_gguf(one / "Brought-Q4_K_M.gguf")
    (one / "README.md").write_text("model card")
    window, _ = _window(qtbot)
    assert _drag_enter(window, _mime(one))
    assert _drop(window, _mime(one))
    qtbot.waitUntil(lambda: window.current_model() == "Brought-Q4_K_M")
    many = tmp_path / "quants"
    many.mkdir()
    for quant in ("Q4_K_M", "Q8_0"):
        header_only_gguf(many / f"Other-{quant}.gguf")
    asked: list[str] = []

    def pick(parent, caption, start, filters):  # the file dialog, as the user answers it: the Q8_0 file
        asked.append(start)
        return str(many / "Other-Q8_0.gguf"), filters.split(";;")[0]

    monkeypatch.setattr(QFileDialog, "getOpenFileName", pick)
    assert _drag_enter(window, _mime(many))
    assert _drop(window, _mime(many))
    qtbot.waitUntil(lambda: window.current_model() == "Other-Q8_0")
    assert asked == [str(many)]  # opened in that folder
    assert window.model_picker.findData("Other-Q4_K_M") < 0
    window.close()


def test_a_model_fetched_from_the_hub_by_id_is_listed_chosen_and_loaded(qtbot, tmp_path, monkeypatch):
    """*Add model… → From Hugging Face…*: a GGUF repository's id with a quantization (in any case) is fetched off
    the GUI thread, then listed under the id the cache gives it and chosen; an id the Hub does not have is warned
    about, the model in use kept."""
    from PySide6.QtWidgets import QInputDialog

    from tests.hub_fake import REPO, fake_hub

    fake_hub(tmp_path, monkeypatch)
    answers = iter([(f"{REPO}:q4_0", True), ("nobody/Nothing-GGUF:Q4_K_M", True)])
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: next(answers))
    window, _ = _window(qtbot)
    action = next(a for a in window.model_menu.menu.actions() if a.text().startswith("From &Hugging Face"))
    action.trigger()
    qtbot.waitUntil(lambda: window.current_model() == f"{REPO}:Q4_0")
    assert window.model_picker.currentText().startswith(f"{REPO}:Q4_0 · hf-cache")
    action.trigger()
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "warning") is not None)
    box = window.findChild(QMessageBox, "warning")
    assert "nobody/Nothing-GGUF is not in the Hugging Face cache and could not be listed" in box.text()
    assert window.current_model() == f"{REPO}:Q4_0"
    box.close()
    window.close()
