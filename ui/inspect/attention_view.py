"""The Attention view: pick a token, a layer and a head (or the average over heads) and see which earlier tokens
it attends to, as a shaded token strip, beside every layer × head pattern and the chosen one's full matrix."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from playground.domain.inspect import Inspection
from ui.common.widgets import hint_label
from ui.inspect.heads_grid import AVERAGE, HeadsGrid
from ui.inspect.matrix_view import MatrixView
from ui.inspect.token_strip import TokenStrip


def token_kinds(insp: Inspection) -> list[str]:
    """source | prompt | completion | generated, per token."""
    t = len(insp)
    first_generated = t - insp.generated
    return ["source" if i < insp.source_tokens else "prompt" if i < insp.prompt_tokens else
            "generated" if i >= first_generated else "completion" for i in range(t)]


def _scroll(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(widget)
    return area


class AttentionView(QWidget):
    selection_changed = Signal(int, int, int)  # token, layer, head (AVERAGE: the average over heads)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.inspection: Inspection | None = None
        self.query, self.layer, self.head = -1, 0, AVERAGE
        self.layer_box = QSpinBox()
        self.layer_box.setToolTip("Which layer's attention (0 = the first block)")
        self.layer_box.valueChanged.connect(lambda v: self.select(layer=v))
        self.head_box = QComboBox()
        self.head_box.setToolTip("One attention head, or the average over the layer's heads")
        self.head_box.activated.connect(lambda i: self.select(head=AVERAGE if i == 0 else i - 1))
        self.caption = QLabel()
        self.caption.setTextFormat(Qt.TextFormat.PlainText)
        self.strip = TokenStrip()
        self.strip.token_clicked.connect(lambda i: self.select(query=i))
        self.grid = HeadsGrid()
        self.grid.cell_clicked.connect(lambda layer, head: self.select(layer=layer, head=head))
        self.matrix = MatrixView()
        self.matrix.row_clicked.connect(lambda q: self.select(query=q))

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Layer"))
        controls.addWidget(self.layer_box)
        controls.addWidget(QLabel("Head"))
        controls.addWidget(self.head_box)
        controls.addWidget(self.caption, 1)
        legend = hint_label("Click a token to see what it attends to; shade ∝ √weight (hover for the number). "
                            "Outlines: dashed grey = source text, dark = prompt, green = completion, purple = "
                            "generated, orange = selected. Grey cells are the causal mask: no token sees a later "
                            "one.")
        lower = QSplitter()
        lower.addWidget(_scroll(self.grid))
        lower.addWidget(self.matrix)
        lower.setSizes([620, 360])
        upper = QWidget()
        up = QVBoxLayout(upper)
        up.setContentsMargins(0, 0, 0, 0)
        up.addLayout(controls)
        up.addWidget(legend)
        up.addWidget(_scroll(self.strip), 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(upper)
        split.addWidget(lower)
        split.setSizes([180, 520])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    def set_inspection(self, insp: Inspection | None, tokens: list[str] | None = None,
                       kinds: list[str] | None = None) -> None:
        """A new inspection (or, with ``insp`` None, a saved run's tokens without weights)."""
        self.inspection = insp
        if insp is None:
            self.strip.set_tokens(tokens or [], kinds or [])
            self.grid.set_attention(None, [])
            self.matrix.set_matrix(None, [], "", -1)
            self.caption.setText("Press Inspect to compute the attention weights" if tokens else "")
            return
        self.strip.set_tokens(list(insp.tokens), token_kinds(insp))
        self.grid.set_attention(insp.attention, list(insp.tokens))
        self.layer_box.blockSignals(True)
        self.layer_box.setRange(0, insp.layers - 1)
        self.layer_box.blockSignals(False)
        self.head_box.clear()
        self.head_box.addItems(["average over heads", *[f"head {h}" for h in range(insp.heads)]])
        self.query = -1
        self.select(query=len(insp) - 1, layer=min(self.layer, insp.layers - 1),
                    head=self.head if self.head < insp.heads else AVERAGE)

    def select(self, query: int | None = None, layer: int | None = None, head: int | None = None) -> None:
        """Show ``query``'s attention in ``layer`` / ``head`` (unchanged where None) everywhere."""
        insp = self.inspection
        if insp is None:
            return
        self.query = self.query if query is None else max(0, min(query, len(insp) - 1))
        self.layer = self.layer if layer is None else max(0, min(layer, insp.layers - 1))
        self.head = self.head if head is None else head
        matrix = self.matrix_of(self.layer, self.head)
        name = f"layer {self.layer}, {'average over heads' if self.head == AVERAGE else f'head {self.head}'}"
        self.strip.set_weights(matrix[self.query], self.query, name)
        self.grid.set_selection(self.layer, self.head, self.query)
        self.matrix.set_matrix(matrix, list(insp.tokens), name, self.query)
        self.layer_box.blockSignals(True)
        self.layer_box.setValue(self.layer)
        self.layer_box.blockSignals(False)
        self.head_box.setCurrentIndex(0 if self.head == AVERAGE else self.head + 1)
        top = int(np.argmax(matrix[self.query, :self.query + 1]))
        self.caption.setText(f"Token {self.query} {insp.tokens[self.query]!r} attends most to token {top} "
                             f"{insp.tokens[top]!r} ({float(matrix[self.query, top]):.0%}) · {name}")
        self.selection_changed.emit(self.query, self.layer, self.head)

    def matrix_of(self, layer: int, head: int) -> np.ndarray:
        assert self.inspection is not None
        att = self.inspection.attention
        return att[layer].mean(axis=0) if head == AVERAGE else att[layer, head]

    @Slot(int)
    def select_token(self, index: int) -> None:
        self.select(query=index)
