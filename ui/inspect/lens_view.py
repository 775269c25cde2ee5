"""Layer by layer (the logit lens): for the positions up to the selected token, what each layer would predict next
if the network stopped there. Rows are layers (the model's own output at the top, the embeddings at the bottom),
columns are positions; each cell shows the top guess coloured by its probability, bold where it already is the
model's final answer; hover for the top 5."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from playground.domain.inspect import Lens, LensLayer
from playground.tasks.inspect_run import same_token, settles_at
from ui.common.token_view import probability_colour
from ui.common.widgets import hint_label
from ui.inspect.heatmap import visible

WINDOW = 10  # positions shown at once: the selected one and those before it


def lens_tooltip(layer: LensLayer, token: str) -> str:
    rows = "".join(f"<tr><td>{html.escape(repr(p.text))}</td><td align='right'>{p.prob:.1%}</td></tr>"
                   for p in layer.top)
    name = "embeddings" if layer.layer == 0 else f"layer {layer.layer}"
    return f"<b>{name}</b>, after {html.escape(repr(token))}:<table cellspacing='4'>{rows}</table>"


class LensView(QWidget):
    positions_needed = Signal(list)  # positions whose lens is not computed yet
    position_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tokens: list[str] = []
        self.lens: Lens = {}
        self.layers = 0
        self.position = -1
        self.live = True  # False: a saved run's positions only, nothing to compute
        self.table = QTableWidget()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().sectionClicked.connect(self._on_header_clicked)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(hint_label(
            "Each layer's hidden state read through the final norm and the output head: what the model would say "
            "if it stopped at that layer. Bold: already the model's final answer. Click a column to pick its "
            "token; hover a cell for the top 5."))
        layout.addWidget(self.table, 1)

    # -- content -----------------------------------------------------------------------------------------------
    def set_inspection(self, tokens: list[str], layers: int, lens: Lens, live: bool = True) -> None:
        """A new text: its tokens, its layer count (blocks; the lens has one more row, the embeddings). ``live``:
        positions not in ``lens`` can be computed (else only those are shown: a saved run)."""
        self.tokens, self.layers, self.lens, self.live = list(tokens), layers, dict(lens), live
        self.position = -1
        self.show_position(len(tokens) - 1)

    def add_lens(self, lens: Lens) -> None:
        self.lens.update(lens)
        self._fill()

    def window(self) -> list[int]:
        if not self.live:
            return sorted(self.lens)
        return list(range(max(0, self.position - WINDOW + 1), self.position + 1))

    def show_position(self, position: int) -> None:
        """Show the window of positions ending at ``position``, asking for those not computed yet."""
        if not self.tokens:
            self.table.clear()
            self.table.setRowCount(0)
            self.table.setColumnCount(0)
            self.title.clear()
            return
        self.position = max(0, min(position, len(self.tokens) - 1))
        missing = [p for p in self.window() if p not in self.lens]
        if missing and self.live:
            self.positions_needed.emit(missing)
        self._fill()

    def cell(self, layer: int, position: int) -> QTableWidgetItem | None:
        """The item showing ``layer``'s guess at ``position`` (None outside the window)."""
        window = self.window()
        if position not in window:
            return None
        return self.table.item(self.layers - layer, window.index(position))

    def _fill(self) -> None:
        window = self.window()
        self.table.clear()
        self.table.setRowCount(self.layers + 1)
        self.table.setColumnCount(len(window))
        self.table.setHorizontalHeaderLabels([f"{p}: {visible(self.tokens[p])}" for p in window])
        self.table.setVerticalHeaderLabels(["output" if r == 0 else ("embeddings" if r == self.layers else
                                                                     f"layer {self.layers - r}")
                                            for r in range(self.layers + 1)])
        bold = QFont(self.font())
        bold.setBold(True)
        for col, pos in enumerate(window):
            layers = self.lens.get(pos)
            if layers is None:
                for row in range(self.layers + 1):
                    self.table.setItem(row, col, QTableWidgetItem("…"))
                continue
            final = same_token(layers[-1].top[0])
            for entry in layers:
                best = entry.top[0]
                item = QTableWidgetItem(f"{visible(best.text)}  {best.prob:.0%}")
                item.setBackground(QBrush(probability_colour(best.prob)))
                item.setForeground(QBrush(QColor("#202020")))
                item.setToolTip(lens_tooltip(entry, self.tokens[pos]))
                if same_token(best) == final:
                    item.setFont(bold)
                self.table.setItem(self.layers - entry.layer, col, item)
        QTimer.singleShot(0, self._scroll_to_selected)  # after the columns have their widths
        layers = self.lens.get(self.position)
        if layers is not None:
            answer = layers[-1].top[0]
            self.title.setText(f"After token {self.position} {self.tokens[self.position]!r}, the model predicts "
                               f"{answer.text!r} ({answer.prob:.0%}); it is the top guess from layer "
                               f"{settles_at(layers)} on")
        else:
            self.title.setText(f"Computing the layers' predictions after token {self.position}…")

    @Slot()
    def _scroll_to_selected(self) -> None:
        window = self.window()
        if self.position in window and self.table.rowCount():
            self.table.scrollToItem(self.table.item(0, window.index(self.position)))

    @Slot(int)
    def _on_header_clicked(self, column: int) -> None:
        window = self.window()
        if 0 <= column < len(window):
            self.position_clicked.emit(window[column])
