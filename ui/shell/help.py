"""The Help menu's dialogs: keyboard shortcuts, About (versions, data and log folders), opening the data folder."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QPalette
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from playground import paths
from ui.common.widgets import hint_label

SHORTCUTS = (
    ("Ctrl+Enter", "Run / Generate / Fill in the current tab"),
    ("Esc", "Stop the running job (what it produced so far is kept)"),
    ("Ctrl+N", "New session"),
    ("Ctrl+F", "Search sessions and their runs"),
    ("F2", "Rename the session (in the sessions list)"),
    ("Delete", "Delete the session (in the sessions list; Undo is offered)"),
    ("Enter / double-click", "Re-open a run from the History list"),
    ("Alt+Left / Alt+Right", "Layout: previous / next version of the page"),
    ("Ctrl+V / Ctrl+C", "Sheet: paste tab-separated cells / copy the selection"),
    ("Delete / Backspace", "Sheet: clear the selected cells"),
    ("F11", "Full screen on / off"),
    ("Ctrl+Q", "Quit (everything is saved)"),
)

VERSIONED = ("PySide6", "torch", "transformers", "diffusers", "tokenizers", "safetensors", "SQLAlchemy")


def versions() -> list[tuple[str, str]]:
    """(name, version) of Playground, Python, Qt and the libraries that run the models, without importing them."""
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import qVersion

    out = [("Playground", _version("playground")), ("Python", platform.python_version()),
           ("Qt", qVersion()), ("PySide6", pyside_version)]
    out += [(name, _version(name)) for name in VERSIONED[1:]]
    return out


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def about_text() -> str:
    from ui.shell.crash import log_path

    lines = ["Playground — a local prompt playground: few-shot prompting with token probabilities, layout → "
             "HTML, sheet completion, text-to-image, comparisons.", ""]
    lines += [f"{name} {version}" for name, version in versions()]
    lines += ["", f"Platform: {platform.platform()} ({sys.platform})", f"Data folder: {paths.data_dir()}",
              f"Log file: {log_path()}", "", "Everything runs on this machine; nothing is sent anywhere unless you "
              "add a remote endpoint yourself."]
    return "\n".join(lines)


def open_data_folder() -> bool:
    """Open the data folder in the system's file manager; return whether it could be asked to."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(paths.data_dir())))


class ShortcutsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        table = self.table = QTableWidget(len(SHORTCUTS), 2)
        table.setHorizontalHeaderLabels(["Keys", "What it does"])
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, (keys, what) in enumerate(SHORTCUTS):
            table.setItem(row, 0, QTableWidgetItem(keys))
            table.setItem(row, 1, QTableWidgetItem(what))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(hint_label("Hover any parameter for what it does and its default in that tab."))
        layout.addWidget(buttons)
        self.resize(560, 460)


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Playground")
        text = self.text = hint_label(about_text())
        text.setForegroundRole(QPalette.ColorRole.WindowText)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        open_button = buttons.addButton("Open data folder", QDialogButtonBox.ButtonRole.ActionRole)
        open_button.clicked.connect(lambda _checked=False: open_data_folder())
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(buttons)
        self.setMinimumWidth(480)
