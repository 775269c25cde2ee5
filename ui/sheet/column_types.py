"""The Sheet's column types: pick a column and what its cells may hold (free text, a number, one of the values
already in the column). A typed column's cells are generated under that constraint, so a numeric column only ever
gets numbers."""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from playground.tasks.constraints import COLUMN_TYPES


class ColumnTypes(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._types: dict[str, str] = {}  # column name -> type (free text is not stored)
        self.column = QComboBox()
        self.column.setToolTip("The column whose type to set")
        self.column.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.kind = QComboBox()
        self.kind.addItems(list(COLUMN_TYPES))
        self.kind.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.kind.setToolTip("What the model may write in this column's cells: any text; a number only; or one of "
                             "the values the column already holds. Typed cells are filled one by one under that "
                             "constraint (slower than free text, which is batched)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Column type"))
        layout.addWidget(self.column)
        layout.addWidget(self.kind)
        self.column.currentTextChanged.connect(self._on_column_changed)
        self.kind.currentTextChanged.connect(self._on_kind_changed)

    def types(self) -> dict[str, str]:
        """Column name -> type, for the columns that are not free text."""
        return dict(self._types)

    def set_types(self, types: dict[str, str]) -> None:
        self._types = {str(k): v for k, v in types.items() if v in COLUMN_TYPES and v != COLUMN_TYPES[0]}
        self._on_column_changed(self.column.currentText())

    def set_columns(self, names: list[str]) -> None:
        """The sheet's columns changed: offer them; types of columns that are gone are dropped."""
        current = self.column.currentText()
        self.column.blockSignals(True)
        self.column.clear()
        self.column.addItems(names)
        self.column.setCurrentIndex(max(0, self.column.findText(current)))
        self.column.blockSignals(False)
        self._types = {k: v for k, v in self._types.items() if k in names}
        self._on_column_changed(self.column.currentText())

    @Slot(str)
    def _on_column_changed(self, name: str) -> None:
        self.kind.blockSignals(True)
        self.kind.setCurrentText(self._types.get(name, COLUMN_TYPES[0]))
        self.kind.blockSignals(False)

    @Slot(str)
    def _on_kind_changed(self, kind: str) -> None:
        name = self.column.currentText()
        if not name:
            return
        if kind == COLUMN_TYPES[0]:
            self._types.pop(name, None)
        else:
            self._types[name] = kind
        self.changed.emit()
