"""File ▸ Export session as Markdown: every run, and the session's name in the documents folder by default
(issue 16, item 2: it offered ``session.md`` in the working directory and dropped all but the Prompt runs)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QFileDialog

from tests.common.scripted import ScriptedRunner
from tests.store.test_markdown import every_kind
from ui.shell.main_window import MainWindow


def menu_action(window: MainWindow, text: str):
    file_menu = window.menuBar().actions()[0].menu()
    return next(a for a in file_menu.actions() if a.text().replace("&", "").startswith(text))


def test_markdown_export_from_the_file_menu(qtbot, tmp_path, monkeypatch):
    window = MainWindow(ScriptedRunner([]), autoload=False)
    qtbot.addWidget(window)
    session = every_kind(window.store)
    window.sessions.select(session)
    offered: list[str] = []
    target = tmp_path / "out.md"

    def save_dialog(_parent, _title, default, _filter):
        offered.append(default)
        return str(target), "Markdown (*.md)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(save_dialog))
    menu_action(window, "Export session as Markdown").trigger()
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    assert offered == [str(Path(documents) / "Lecture - demos.md")]  # "|" cannot be in a file name
    md = target.read_text(encoding="utf-8")
    assert md.count("\n## ") == 7 and "*Rome* (87%)" in md and "### Column 2" in md
    assert str(target) in window.statusBar().currentMessage()
