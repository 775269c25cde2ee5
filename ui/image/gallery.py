"""The Image tab's gallery: thumbnails of results, each with the settings that made it.

Click restores the settings; the buttons copy the seed, save a copy, delete from the gallery. Entries are plain
dicts ``{"path": "images/<sha256>.png", "sha256", "settings"}`` relative to the data dir, as runs store them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication, QIcon, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from playground import paths
from playground.tasks.image_meta import format_parameters
from ui.common.flow_layout import flow_row
from ui.common.widgets import plain_tip

THUMB = 96
MAX_ITEMS = 200


class ImageGallery(QWidget):
    restore_requested = Signal(dict)  # settings
    selected = Signal(dict)  # the entry clicked
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setSpacing(4)
        self.list.itemClicked.connect(self._on_item_clicked)
        self.restore_button = QPushButton("Restore settings")
        self.restore_button.clicked.connect(self._on_restore_clicked)
        self.seed_button = QPushButton("Copy seed")
        self.seed_button.clicked.connect(self.copy_seed)
        self.save_button = QPushButton("Save as…")
        self.save_button.clicked.connect(self._on_save_clicked)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self.delete_selected)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list, 1)
        layout.addWidget(flow_row(self.restore_button, self.seed_button, self.save_button, self.delete_button))
        self._update_buttons()
        self.list.currentItemChanged.connect(lambda *_: self._update_buttons())

    def add(self, entry: dict[str, Any], select: bool = True) -> None:
        """Add an entry at the front (newest first)."""
        item = QListWidgetItem()
        item.setData(Qt.ItemDataRole.UserRole, entry)
        pix = QPixmap(str(self.file_of(entry)))
        if not pix.isNull():
            item.setIcon(QIcon(pix.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.FastTransformation)))
        settings = entry.get("settings", {})
        item.setText(f"seed {settings.get('seed', '?')}")
        item.setToolTip(plain_tip(format_parameters(settings)))
        self.list.insertItem(0, item)
        while self.list.count() > MAX_ITEMS:
            self.list.takeItem(self.list.count() - 1)
        if select:
            self.list.setCurrentItem(item)
        self.changed.emit()

    def entries(self) -> list[dict[str, Any]]:
        """Oldest first, so adding them back in order rebuilds the same gallery."""
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in reversed(range(self.list.count()))]

    def set_entries(self, entries: list[dict[str, Any]]) -> None:
        self.list.clear()
        for e in entries:
            if isinstance(e, dict) and e.get("path"):
                self.add(e, select=False)
        self._update_buttons()

    def current(self) -> dict[str, Any] | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    @staticmethod
    def file_of(entry: dict[str, Any]) -> Path:
        return paths.data_dir() / str(entry.get("path", ""))

    @Slot()
    def copy_seed(self) -> None:
        entry = self.current()
        if entry is not None:
            QGuiApplication.clipboard().setText(str(entry.get("settings", {}).get("seed", "")))

    def save_as(self, dest: str | Path) -> None:
        entry = self.current()
        if entry is not None:
            shutil.copyfile(self.file_of(entry), dest)

    @Slot()
    def delete_selected(self) -> None:
        """Remove from the gallery (the file stays: runs in the history may still show it)."""
        row = self.list.currentRow()
        if row >= 0:
            self.list.takeItem(row)
            self._update_buttons()
            self.changed.emit()

    @Slot(QListWidgetItem)
    def _on_item_clicked(self, item: QListWidgetItem) -> None:
        entry = item.data(Qt.ItemDataRole.UserRole)
        self.selected.emit(entry)
        self.restore_requested.emit(dict(entry.get("settings", {})))

    @Slot()
    def _on_restore_clicked(self) -> None:
        entry = self.current()
        if entry is not None:
            self.restore_requested.emit(dict(entry.get("settings", {})))

    @Slot()
    def _on_save_clicked(self) -> None:
        entry = self.current()
        if entry is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save image", f"image-{entry['settings'].get('seed', 0)}.png",
                                              "PNG (*.png)")
        if path:
            self.save_as(path)

    def _update_buttons(self) -> None:
        has = self.list.currentItem() is not None
        for b in (self.restore_button, self.seed_button, self.save_button, self.delete_button):
            b.setEnabled(has)
