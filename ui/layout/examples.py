"""The editable few-shot examples of the Layout tab: description → HTML pairs, one per row."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from playground.tasks.layout_html import Example


class ExamplesEditor(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Description", "HTML"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setToolTip("The prompt shows the model these pairs first; edit, add or remove them")
        self.table.itemChanged.connect(lambda _item: self.changed.emit())
        add = QPushButton("Add example")
        add.clicked.connect(self.add_row)
        remove = QPushButton("Remove selected")
        remove.clicked.connect(self.remove_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)

    def set_examples(self, examples: list[Example]) -> None:
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        for ex in examples:
            self._append(ex.description, ex.html)
        self.table.blockSignals(False)
        self.table.resizeRowsToContents()

    def examples(self) -> list[Example]:
        """Complete rows only: a pair missing either side teaches nothing."""
        out = []
        for row in range(self.table.rowCount()):
            desc, html = (self.table.item(row, c).text().strip() if self.table.item(row, c) else "" for c in (0, 1))
            if desc and html:
                out.append(Example(desc, html))
        return out

    def add_row(self) -> None:
        self._append("", "")
        self.table.editItem(self.table.item(self.table.rowCount() - 1, 0))
        self.changed.emit()

    def remove_selected(self) -> None:
        for row in sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True):
            self.table.removeRow(row)
        self.changed.emit()

    def _append(self, description: str, html: str) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        self.table.setItem(row, 0, QTableWidgetItem(description))
        self.table.setItem(row, 1, QTableWidgetItem(html))
