"""The Sheet tab's table editor: the edit toolbar, the grid with its column-header menu, clipboard and CSV files.

Everything here edits the table the user owns; running the model is the tab's business. While a job runs the tab
locks the grid (``set_locked``): rows keep their indices while the model writes into them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QPoint, Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from playground.errors import KnownError
from playground.tasks.sheet import Sheet, formula_cells, parse_table, read_csv, to_csv
from ui.common.flow_layout import flow_row
from ui.sheet.table_model import SheetModel

LEGEND = ("<b>Model cells</b> are italic and coloured red → green by confidence; hatched <b>? cells</b> are "
          "unsure (under the threshold) and are exported empty. Hover a cell for its top alternatives. "
          "Confidence = product of the answer tokens' probabilities.")


def action_button(text: str, tip: str, slot: Callable[[], None] | None = None) -> QPushButton:
    """A push button with a tooltip, connected to ``slot`` when one is given."""
    button = QPushButton(text)
    button.setToolTip(tip)
    if slot is not None:  # clicked(bool) must not reach a slot that takes no flag
        button.clicked.connect(lambda _checked=False: slot())
    return button


class SheetGrid(QWidget):
    message = Signal(str)  # one line for the status bar
    problem = Signal(str)  # something the user should fix, shown above the sheet
    replaced = Signal(object)  # tuple[str, ...]: the whole table was replaced, with the repairs made on the way

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = SheetModel(self)
        self.locked = False

        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setWordWrap(False)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setDefaultSectionSize(170)
        header.setStretchLastSection(True)
        header.sectionDoubleClicked.connect(self._on_header_double_clicked)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._on_header_menu_requested)
        self.view.verticalHeader().setDefaultSectionSize(24)
        self._edit_triggers = self.view.editTriggers()

        self.import_button = action_button("Import CSV…", "Open a CSV or TSV file (or drop one on the sheet)",
                                           self._on_import_clicked)
        self.export_button = action_button("Export CSV…", "Save the sheet; unsure cells are written empty",
                                           self._on_export_clicked)
        self.add_row_button = action_button("+ Row", "Add a row below the current one", self.add_row)
        self.remove_row_button = action_button("− Row", "Remove the selected rows", self.remove_rows)
        self.add_column_button = action_button("+ Column", "Add a column after the current one", self.add_column)
        self.remove_column_button = action_button("− Column", "Remove the selected columns", self.remove_columns)
        self.accept_button = action_button(
            "Accept", "Keep the selected model cells as your own values (they then serve as examples); with "
            "nothing selected, every cell above the threshold", self.accept_cells)
        self.clear_button = action_button("Clear", "Empty the selected cells (Delete)", self.clear_cells)
        self.legend = QLabel(LEGEND)
        self.legend.setWordWrap(True)
        self.legend.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(flow_row(self.import_button, self.export_button, self.add_row_button,  # wraps when narrow
                                  self.remove_row_button, self.add_column_button, self.remove_column_button,
                                  self.accept_button, self.clear_button))
        layout.addWidget(self.view, 1)
        layout.addWidget(self.legend)

    def set_locked(self, locked: bool) -> None:
        """While the model writes into the cells: no edits, no structural changes."""
        self.locked = locked
        for w in (self.import_button, self.add_row_button, self.remove_row_button, self.add_column_button,
                  self.remove_column_button, self.accept_button, self.clear_button):
            w.setEnabled(not locked)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers if locked else self._edit_triggers)

    # -- the whole table -------------------------------------------------------------------------------------
    def set_sheet(self, sheet: Sheet, warnings: tuple[str, ...] = ()) -> None:
        """Replace the grid's content (a preset, an import, a paste with a header)."""
        if self.locked:
            return
        self.model.set_sheet(sheet)
        self.replaced.emit(tuple(warnings))

    def import_csv(self, path: str | Path) -> bool:
        """Load a CSV/TSV file into the grid; a problem is reported on ``problem``. Return whether it loaded."""
        if self.locked:
            self.problem.emit("Stop the running job before importing")
            return False
        try:
            loaded = read_csv(Path(path))
        except KnownError as exc:
            self.problem.emit(str(exc))
            return False
        self.set_sheet(loaded.sheet, loaded.warnings)
        self.message.emit(f"Imported {Path(path).name}: {len(loaded.sheet.rows):,} rows")
        return True

    def export_csv(self, path: str | Path) -> bool:
        """Write the grid as UTF-8 CSV (unsure cells empty); return whether it was written."""
        sheet = self.model.export_sheet()
        try:
            Path(path).write_text(to_csv(sheet), encoding="utf-8")
        except OSError as exc:
            self.problem.emit(f"Cannot write {path}: {exc.strerror or exc}")
            return False
        guarded = formula_cells(sheet)
        self.message.emit(f"Saved {path}" + (f" ({guarded} cell(s) starting with = + - @ were written with a "
                                             "leading ' so spreadsheets show them as text, never run them)"
                                             if guarded else ""))
        return True

    # -- clipboard -------------------------------------------------------------------------------------------
    def paste_text(self, text: str) -> None:
        """Paste tab-separated text: onto an empty grid it becomes the table (first line = header), otherwise
        it lands at the current cell (below the last row when there is none) and the grid grows to fit."""
        if self.locked or not text.strip():
            return
        blank = all(not c.value and c.answer is None for row in self.model.cells for c in row)
        try:
            if blank and "\n" in text.strip():
                loaded = parse_table(text, "\t" if "\t" in text else None)
                self.set_sheet(loaded.sheet, loaded.warnings)
                rows = len(loaded.sheet.rows)
            else:
                current = self.view.currentIndex()  # no current cell: the rows go below the last one
                at = (current.row(), current.column()) if current.isValid() else (self.model.rowCount(), 0)
                rows, _ = self.model.paste(text, *at)
        except KnownError as exc:
            self.problem.emit(str(exc))
            return
        self.message.emit(f"Pasted {rows:,} rows")

    @Slot()
    def paste_clipboard(self) -> None:
        if self.view.state() == QAbstractItemView.State.EditingState:
            return  # the cell editor pastes into itself
        self.paste_text(QGuiApplication.clipboard().text())

    @Slot()
    def copy_selection(self) -> None:
        QGuiApplication.clipboard().setText(self.model.copy_text(self.selected_cells()))

    # -- rows, columns, cells --------------------------------------------------------------------------------
    @Slot()
    def add_row(self) -> None:
        if not self.locked:
            current = self.view.currentIndex()
            self.model.insert_rows(current.row() + 1 if current.isValid() else self.model.rowCount())

    @Slot()
    def remove_rows(self) -> None:
        if not self.locked:
            self.model.remove_rows([r for r, _ in self.selected_cells()])

    @Slot()
    def add_column(self) -> None:
        if not self.locked:
            current = self.view.currentIndex()
            self.model.insert_column(current.column() + 1 if current.isValid() else self.model.columnCount())

    @Slot()
    def remove_columns(self) -> None:
        if not self.locked:
            self.model.remove_columns([c for _, c in self.selected_cells()])

    def selected_cells(self) -> list[tuple[int, int]]:
        """The selected (row, column) pairs in reading order."""
        return sorted({(i.row(), i.column()) for i in self.view.selectionModel().selectedIndexes()})

    def select(self, row: int, column: int) -> None:
        """Make (row, column) the current and only selected cell."""
        self.view.selectionModel().setCurrentIndex(self.model.index(row, column),
                                                   QItemSelectionModel.SelectionFlag.ClearAndSelect)

    @Slot()
    def accept_cells(self) -> None:
        if self.locked:
            return
        chosen = [rc for rc in self.selected_cells() if self.model.cells[rc[0]][rc[1]].answer is not None]
        if not chosen:
            chosen = [rc for rc in self.model.model_cells() if self.model.state(*rc) == "model"]
        n = self.model.accept(chosen)
        self.message.emit(f"Accepted {n} cell(s)")

    @Slot()
    def clear_cells(self) -> None:
        if not self.locked and self.view.state() != QAbstractItemView.State.EditingState:
            self.model.clear_cells(self.selected_cells())

    # -- column header ---------------------------------------------------------------------------------------
    @Slot(int)
    def _on_header_double_clicked(self, column: int) -> None:
        name, ok = QInputDialog.getText(self, "Rename column", "Column name:", text=self.model.columns[column])
        if ok:
            self.model.rename_column(column, name)

    @Slot(QPoint)
    def _on_header_menu_requested(self, pos: QPoint) -> None:
        column = self.view.horizontalHeader().logicalIndexAt(pos)
        if column < 0 or self.locked:
            return
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self._on_header_double_clicked(column))
        menu.addAction("Instruction…", lambda: self._ask_instruction(column))
        menu.addAction("Insert column after", lambda: self.model.insert_column(column + 1))
        menu.addAction("Remove column", lambda: self.model.remove_columns([column]))
        menu.exec(self.view.horizontalHeader().mapToGlobal(pos))

    def _ask_instruction(self, column: int) -> None:
        name = self.model.columns[column]
        text, ok = QInputDialog.getText(
            self, "Column instruction", f"How the model should write {name!r} (e.g. \"in millions\"); it is shown "
            "next to the column name in the prompt:", text=self.model.instructions.get(name, ""))
        if ok:
            self.model.set_instruction(column, text)

    # -- files -----------------------------------------------------------------------------------------------
    @Slot()
    def _on_import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a table", filter="Tables (*.csv *.tsv *.txt);;All (*)")
        if path:
            self.import_csv(path)

    @Slot()
    def _on_export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the sheet", "sheet.csv", filter="CSV (*.csv)")
        if path:
            self.export_csv(path)
