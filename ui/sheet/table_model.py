"""The editable grid behind the Sheet tab: typed cells, model cells with their confidence, unsure and pending cells.

A cell is *typed* (the user's, or model output the user accepted) or *model output* (``answer`` is set). Only
typed values feed prompts, so a wrong guess never becomes an example without the user accepting it.
"""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont

from playground.domain.sheet import CONFIDENCE_HELP, CellAnswer
from playground.tasks.sheet import MAX_COLUMNS, MAX_ROWS, Sheet, unique_names
from playground.tasks.sheet_state import DEFAULT_THRESHOLD, SheetState, empty_sheet
from ui.common.theme import is_dark, no_probability_colour, probability_colour, text_on
from ui.common.token_view import NOT_PROVIDED
from ui.common.widgets import plain_tip

AnswerRole = Qt.ItemDataRole.UserRole + 1  # the CellAnswer of a model cell, or None
StateRole = Qt.ItemDataRole.UserRole + 2  # "typed" | "model" | "unsure" | "pending"
UNSURE_BRUSH = QBrush(QColor("#c8c8c8"), Qt.BrushStyle.BDiagPattern)
PENDING_TEXT = "…"

Index = QModelIndex | QPersistentModelIndex


@dataclass
class Cell:
    value: str = ""
    answer: CellAnswer | None = None  # set while the value is model output the user has not accepted
    accepted: bool = False  # model output the user kept: typed from now on, remembered in drafts


def is_unsure(answer: CellAnswer, threshold: float) -> bool:
    """Under the threshold; a cell whose confidence the server did not provide is not called unsure."""
    return answer.confidence is not None and answer.confidence < threshold


def answer_tooltip(answer: CellAnswer, threshold: float) -> str:
    """The hover text of a model cell: confidence, how it is computed, alternatives and per-token probabilities."""
    edit = "<i>Accept</i> keeps it as typed; <i>Clear</i> empties it; editing replaces it."
    if answer.confidence is None:
        tokens = " ".join(html.escape(repr(t.text)) for t in answer.tokens)
        return (f"<b>Model output</b> · confidence <b>—</b> ({NOT_PROVIDED}: the server sent no token "
                f"probabilities)<br>Tokens: {tokens}<br>{edit}")
    verdict = (f"<b>unsure</b>: under the {threshold:.0%} threshold" if is_unsure(answer, threshold)
               else "above the threshold")
    rows = "".join(f"<tr><td>{html.escape(g.text) or '(empty)'}</td><td align='right'>{g.probability:.1%}</td></tr>"
                   for g in answer.top)
    tokens = " ".join(f"{html.escape(repr(t.text))}&nbsp;{t.probability or 0.0:.0%}" for t in answer.tokens)
    return (f"<b>Model output</b> · confidence <b>{answer.confidence:.1%}</b> ({verdict})<br>"
            f"<small>{html.escape(CONFIDENCE_HELP)}</small><br>"
            f"Top alternatives (at the least sure token):<table cellspacing='4'>{rows}</table>"
            f"Tokens: {tokens}<br>{edit}")


class SheetModel(QAbstractTableModel):
    """Columns with optional instructions, rows of Cells; edits mark a cell typed."""

    changed = Signal()  # any edit, structural or not (the tab shows counts)

    def __init__(self, parent: object | None = None) -> None:
        super().__init__(parent)
        blank = empty_sheet()
        self.columns: list[str] = blank.columns
        self.instructions: dict[str, str] = {}
        self.cells: list[list[Cell]] = [[Cell(v) for v in row] for row in blank.rows]
        self.threshold = DEFAULT_THRESHOLD
        self.pending: set[tuple[int, int]] = set()
        self.dataChanged.connect(self.changed)
        self.modelReset.connect(self.changed)
        self.rowsInserted.connect(self.changed)
        self.rowsRemoved.connect(self.changed)
        self.columnsInserted.connect(self.changed)
        self.columnsRemoved.connect(self.changed)

    # -- Qt model API ------------------------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt override
        return 0 if parent.isValid() else len(self.cells)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt override
        return 0 if parent.isValid() else len(self.columns)

    def flags(self, index: Index) -> Qt.ItemFlag:
        return super().flags(index) | Qt.ItemFlag.ItemIsEditable

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        cell = self.cells[index.row()][index.column()]
        state = self.state(index.row(), index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            if state == "pending":
                return PENDING_TEXT
            return f"? {cell.value}" if state == "unsure" else cell.value
        if role == Qt.ItemDataRole.EditRole:
            return cell.value
        if role == AnswerRole:
            return cell.answer
        if role == StateRole:
            return state
        if role == Qt.ItemDataRole.BackgroundRole:
            if state == "unsure":
                return UNSURE_BRUSH
            if state == "model" and cell.answer is not None:
                confidence = cell.answer.confidence
                return QBrush(no_probability_colour() if confidence is None else probability_colour(confidence))
            return None
        if role == Qt.ItemDataRole.ForegroundRole and state in ("unsure", "pending"):
            return QBrush(QColor("#a0a0a6" if is_dark() else "#6b6b6b"))
        if role == Qt.ItemDataRole.ForegroundRole and state == "model" and cell.answer is not None:
            confidence = cell.answer.confidence
            return QBrush(text_on(no_probability_colour() if confidence is None else probability_colour(confidence)))
        if role == Qt.ItemDataRole.FontRole and state in ("model", "unsure"):
            font = QFont()
            font.setItalic(True)  # model output reads differently from typed text, colours aside
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            if cell.answer is not None:
                return answer_tooltip(cell.answer, self.threshold)
            if state == "pending":
                return "Waiting for the model"
        return None

    def setData(self, index: Index, value: object, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if not index.isValid() or role != Qt.ItemDataRole.EditRole:
            return False
        cell = self.cells[index.row()][index.column()]
        text = str(value).strip()
        if cell.answer is None and text == cell.value:
            return False
        cell.value, cell.answer, cell.accepted = text, None, False  # an edited model cell becomes the user's
        self.dataChanged.emit(index, index)
        return True

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt override
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if orientation == Qt.Orientation.Vertical:
            return str(section + 1) if role == Qt.ItemDataRole.DisplayRole else None
        if not 0 <= section < len(self.columns):
            return None
        name = self.columns[section]
        note = self.instructions.get(name, "")
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{name}\n({note})" if note else name
        if role == Qt.ItemDataRole.ToolTipRole:
            return plain_tip((f"{name}: {note}" if note else name) + " — double-click to rename; right-click for more")
        return None

    # -- states ----------------------------------------------------------------------------------------------
    def state(self, row: int, column: int) -> str:
        """'pending' (queued for the model), 'model', 'unsure' (model, under the threshold) or 'typed'."""
        if (row, column) in self.pending:
            return "pending"
        answer = self.cells[row][column].answer
        if answer is None:
            return "typed"
        return "unsure" if is_unsure(answer, self.threshold) else "model"

    def set_threshold(self, threshold: float) -> None:
        self.threshold = threshold
        self._all_changed()

    def set_pending(self, cells: set[tuple[int, int]]) -> None:
        self.pending = set(cells)
        self._all_changed()

    def set_answer(self, answer: CellAnswer) -> None:
        """Show a model answer in its cell (as model output, not typed)."""
        if not (0 <= answer.row < len(self.cells) and 0 <= answer.column < len(self.columns)):
            return
        self.pending.discard((answer.row, answer.column))
        self.cells[answer.row][answer.column] = Cell(answer.value, answer)
        index = self.index(answer.row, answer.column)
        self.dataChanged.emit(index, index)

    def accept(self, cells: list[tuple[int, int]]) -> int:
        """Keep model output as typed values; return how many cells changed."""
        n = 0
        for r, c in cells:
            cell = self.cells[r][c]
            if cell.answer is not None:
                cell.answer, cell.accepted = None, True
                n += 1
                self.dataChanged.emit(self.index(r, c), self.index(r, c))
        return n

    def clear_cells(self, cells: list[tuple[int, int]]) -> None:
        for r, c in cells:
            self.cells[r][c] = Cell()
            self.dataChanged.emit(self.index(r, c), self.index(r, c))

    def model_cells(self) -> list[tuple[int, int]]:
        return [(r, c) for r, row in enumerate(self.cells) for c, cell in enumerate(row) if cell.answer is not None]

    def empty_cells(self) -> list[tuple[int, int]]:
        """Blank cells that are not model output: the ones Fill completes."""
        return [(r, c) for r, row in enumerate(self.cells) for c, cell in enumerate(row)
                if not cell.value and cell.answer is None]

    # -- structure -------------------------------------------------------------------------------------------
    def insert_rows(self, at: int, count: int = 1) -> bool:
        if count < 1 or len(self.cells) + count > MAX_ROWS:
            return False
        self.beginInsertRows(QModelIndex(), at, at + count - 1)
        self.cells[at:at] = [[Cell() for _ in self.columns] for _ in range(count)]
        self.endInsertRows()
        return True

    def remove_rows(self, rows: list[int]) -> None:
        for r in sorted(set(rows), reverse=True):  # from the bottom so the indices stay valid
            if 0 <= r < len(self.cells):
                self.beginRemoveRows(QModelIndex(), r, r)
                del self.cells[r]
                self.endRemoveRows()

    def insert_column(self, at: int, name: str = "") -> bool:
        if len(self.columns) >= MAX_COLUMNS:
            return False
        names, _ = unique_names([*self.columns, name.strip()])
        self.beginInsertColumns(QModelIndex(), at, at)
        self.columns.insert(at, names[-1])
        for row in self.cells:
            row.insert(at, Cell())
        self.endInsertColumns()
        return True

    def remove_columns(self, columns: list[int]) -> None:
        for c in sorted(set(columns), reverse=True):
            if 0 <= c < len(self.columns) and len(self.columns) > 1:
                self.beginRemoveColumns(QModelIndex(), c, c)
                self.instructions.pop(self.columns[c], None)
                del self.columns[c]
                for row in self.cells:
                    del row[c]
                self.endRemoveColumns()

    def rename_column(self, column: int, name: str) -> str:
        """Rename a column, keeping names unique and non-empty; return the name it got."""
        others = [n for i, n in enumerate(self.columns) if i != column]
        names, _ = unique_names([*others, name.strip()])
        old, new = self.columns[column], names[-1] if name.strip() else self.columns[column]
        if old in self.instructions:
            self.instructions[new] = self.instructions.pop(old)
        self.columns[column] = new
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, column, column)
        self.changed.emit()
        return new

    def set_instruction(self, column: int, text: str) -> None:
        name = self.columns[column]
        if text.strip():
            self.instructions[name] = text.strip()
        else:
            self.instructions.pop(name, None)
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, column, column)
        self.changed.emit()

    # -- whole sheet -----------------------------------------------------------------------------------------
    def set_sheet(self, sheet: Sheet) -> None:
        self.beginResetModel()
        self.columns = list(sheet.columns)
        self.instructions = {k: v for k, v in sheet.instructions.items() if k in self.columns}
        self.cells = [[Cell(v.strip()) for v in row] for row in sheet.rows]
        self.pending = set()
        self.endResetModel()

    def snapshot(self) -> SheetState:
        """The table with its model and accepted cells, at the current threshold (for drafts and run records)."""
        sheet = Sheet(list(self.columns), [[c.value for c in row] for row in self.cells], dict(self.instructions))
        answers = {(r, c): cell.answer for r, row in enumerate(self.cells) for c, cell in enumerate(row)
                   if cell.answer is not None}
        accepted = {(r, c) for r, row in enumerate(self.cells) for c, cell in enumerate(row) if cell.accepted}
        return SheetState(sheet, answers, accepted, self.threshold)

    def load(self, state: SheetState) -> None:
        """Show a saved table exactly as it was: values, model cells with their answers, accepted cells."""
        self.beginResetModel()
        self.columns = list(state.sheet.columns)
        self.instructions = {k: v for k, v in state.sheet.instructions.items() if k in self.columns}
        self.cells = [[Cell(v, state.answers.get((r, c)), (r, c) in state.accepted) for c, v in enumerate(row)]
                      for r, row in enumerate(state.sheet.rows)]
        self.pending = set()
        self.endResetModel()

    def prompt_sheet(self) -> Sheet:
        """The snapshot prompts are built from: typed values only (model output counts as empty)."""
        return Sheet(list(self.columns), [[c.value if c.answer is None else "" for c in row] for row in self.cells],
                     dict(self.instructions))

    def export_sheet(self) -> Sheet:
        """What Export CSV writes: typed values and model output at or above the threshold; unsure cells stay
        empty rather than pretend."""
        def shown(c: Cell) -> str:
            return "" if c.answer is not None and is_unsure(c.answer, self.threshold) else c.value

        return Sheet(list(self.columns), [[shown(c) for c in row] for row in self.cells], dict(self.instructions))

    def paste(self, text: str, row: int, column: int) -> tuple[int, int]:
        """Paste tab-separated text with its top-left at (row, column), growing the sheet as needed; return the
        (rows, columns) pasted. Raises ValueError when it would exceed the sheet's limits."""
        records = [r for r in csv.reader(io.StringIO(text.replace("\r\n", "\n").rstrip("\n")), delimiter="\t")]
        if not records:
            return 0, 0
        height, width = len(records), max(len(r) for r in records)
        if row + height > MAX_ROWS or column + width > MAX_COLUMNS:
            raise ValueError(f"The paste is {height:,} rows × {width} columns; the sheet holds at most "
                             f"{MAX_ROWS:,} rows and {MAX_COLUMNS} columns")
        self.beginResetModel()  # one reset, not one signal per cell: a 10,000-row paste stays instant
        while len(self.columns) < column + width:
            self.columns.append(unique_names([*self.columns, ""])[0][-1])
            for r in self.cells:
                r.append(Cell())
        while len(self.cells) < row + height:
            self.cells.append([Cell() for _ in self.columns])
        for i, record in enumerate(records):
            for j, value in enumerate(record):
                self.cells[row + i][column + j] = Cell(value.strip())
        self.endResetModel()
        return height, width

    def copy_text(self, cells: list[tuple[int, int]]) -> str:
        """The selected block as tab-separated text (the bounding box of ``cells``)."""
        if not cells:
            return ""
        rows = range(min(r for r, _ in cells), max(r for r, _ in cells) + 1)
        cols = range(min(c for _, c in cells), max(c for _, c in cells) + 1)
        return "\n".join("\t".join(self.cells[r][c].value for c in cols) for r in rows) + "\n"

    def _all_changed(self) -> None:
        if self.cells and self.columns:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.cells) - 1, len(self.columns) - 1))
