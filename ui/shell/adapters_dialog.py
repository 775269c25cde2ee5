"""The Adapters… dialog (from the model picker's menu): the fine-tuned LoRA adapters saved in the data dir, each with
what it was trained on, and a Delete button. Adapters are made by the Sheet's "Save adapter…" or
``playground sheet train``; they load as ``BASE+name`` models.
"""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from playground.errors import KnownError
from playground.models import adapters
from playground.sysinfo import human_bytes
from ui.common.widgets import banner, hint_label

COLUMNS = ("model", "trained on", "rows", "epochs", "rows hash", "size", "created")


class AdaptersDialog(QDialog):
    changed = Signal()  # an adapter was deleted: the model pickers should refresh

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fine-tuned adapters")
        self.resize(860, 320)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.error = banner("error")
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected adapter's files (the base model stays)")
        self.delete_button.clicked.connect(self._on_delete_clicked)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.delete_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(hint_label("Made with the Sheet's Fine-tune (LoRA) → Save adapter…, or "
                                    "`playground sheet train`; each loads as BASE+name, merged into its base."))
        layout.addWidget(self.error)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.refresh()

    def refresh(self) -> None:
        self.items = adapters.list_adapters()
        self.table.setRowCount(len(self.items))
        for i, a in enumerate(self.items):
            settings = a.meta.get("settings") if isinstance(a.meta.get("settings"), dict) else {}
            cells = [a.id, str(a.meta.get("column", "")), str(a.meta.get("rows", "")),
                     str(settings.get("epochs", "")), str(a.meta.get("rows_hash", "")), human_bytes(a.size_bytes()),
                     str(a.meta.get("created", ""))]
            for j, text in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(text))
        self.delete_button.setEnabled(bool(self.items))
        if self.items:
            self.table.selectRow(0)

    def delete(self, model_id: str) -> bool:
        """Delete ``model_id``'s adapter; a problem is shown in the dialog. Returns whether it was deleted."""
        try:
            adapters.delete(model_id)
        except (KnownError, OSError) as exc:
            self.error.setText(f"Could not delete {model_id}: {exc}")
            self.error.show()
            return False
        self.error.hide()
        self.refresh()
        self.changed.emit()
        return True

    @Slot()
    def _on_delete_clicked(self) -> None:
        row = self.table.currentRow()
        if not 0 <= row < len(self.items):
            return
        model_id = self.items[row].id
        answer = QMessageBox.question(self, "Delete adapter", f"Delete {model_id}? Its files are removed.")
        if answer == QMessageBox.StandardButton.Yes:
            self.delete(model_id)
