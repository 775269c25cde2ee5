"""The File menu's session actions (import, export as JSON or Markdown) and opening the sessions database."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QStandardPaths, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox
from sqlalchemy.exc import SQLAlchemyError

from playground.errors import KnownError
from playground.store.db import open_database
from playground.store.markdown import export_markdown
from playground.store.repository import SessionStore
from playground.store.transfer import export_session, import_session

if TYPE_CHECKING:
    from ui.shell.main_window import MainWindow


def open_store() -> tuple[SessionStore | None, list[str]]:
    """The sessions store in the data dir, or None (with the reason) when it cannot be used."""
    try:
        db = open_database()
    except KnownError as exc:
        return None, [f"Sessions are off: {exc}"]
    except SQLAlchemyError as exc:
        return None, [f"Sessions are off: the database could not be opened ({exc})"]
    return SessionStore(db), db.notices


def import_dialog(window: MainWindow) -> None:
    path, _ = QFileDialog.getOpenFileName(window, "Import a session", filter="Session exports (*.json)")
    if path and window.store and window.sessions:
        try:
            info = import_session(window.store, Path(path))
        except KnownError as exc:
            box = QMessageBox(QMessageBox.Icon.Warning, "Import failed", str(exc), parent=window)
            box.setTextFormat(Qt.TextFormat.PlainText)  # the message quotes the file's content
            box.exec()
            return
        window.sessions.select(info.id)
        window.statusBar().showMessage(f"Imported {info.name} ({info.run_count} runs)", 8000)


def default_export_path(window: MainWindow, suffix: str) -> Path:
    """The session's name as a file name in the user's documents folder (not the working directory)."""
    assert window.store is not None and window.current_session is not None
    name = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "-", window.store.get(window.current_session).name).strip(" .-")
    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) or str(Path.home())
    return Path(folder) / f"{name[:120] or 'session'}{suffix}"


def export_json_dialog(window: MainWindow) -> None:
    if window.store and window.current_session is not None:
        path, _ = QFileDialog.getSaveFileName(window, "Export session", str(default_export_path(window, ".json")),
                                              "JSON (*.json)")
        if path:
            window.save_drafts()
            try:
                written = export_session(window.store, window.current_session, Path(path))
            except OSError as exc:
                _cannot_write(window, path, exc)
                return
            window.statusBar().showMessage(f"Exported to {written}", 8000)


def export_markdown_dialog(window: MainWindow) -> None:
    if window.store and window.current_session is not None:
        path, _ = QFileDialog.getSaveFileName(window, "Export as Markdown", str(default_export_path(window, ".md")),
                                              "Markdown (*.md)")
        if path:
            try:
                Path(path).write_text(export_markdown(window.store, window.current_session), encoding="utf-8")
            except OSError as exc:
                _cannot_write(window, path, exc)
                return
            window.statusBar().showMessage(f"Exported to {path}", 8000)


def _cannot_write(window: MainWindow, path: str, exc: OSError) -> None:
    box = QMessageBox(QMessageBox.Icon.Warning, "Export failed", f"Cannot write {path}: {exc.strerror or exc}",
                      parent=window)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.exec()
