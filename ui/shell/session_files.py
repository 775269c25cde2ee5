"""The File menu's session actions (import, export as JSON or Markdown) and opening the sessions database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox
from sqlalchemy.exc import SQLAlchemyError

from playground.errors import KnownError
from playground.store.db import open_database
from playground.store.repository import SessionStore
from playground.store.transfer import export_markdown, export_session, import_session

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


def export_json_dialog(window: MainWindow) -> None:
    if window.store and window.current_session is not None:
        path, _ = QFileDialog.getSaveFileName(window, "Export session", "session.json", "JSON (*.json)")
        if path:
            window.save_drafts()
            written = export_session(window.store, window.current_session, Path(path))
            window.statusBar().showMessage(f"Exported to {written}", 8000)


def export_markdown_dialog(window: MainWindow) -> None:
    if window.store and window.current_session is not None:
        path, _ = QFileDialog.getSaveFileName(window, "Export as Markdown", "session.md", "Markdown (*.md)")
        if path:
            Path(path).write_text(export_markdown(window.store, window.current_session), encoding="utf-8")
            window.statusBar().showMessage(f"Exported to {path}", 8000)
