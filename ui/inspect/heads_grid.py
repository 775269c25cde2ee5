"""Every layer × head attention pattern as a small heatmap (row = query token, column = key token; the grey upper
triangle is the causal mask), plus each layer's average over heads. Click one to study it; hover for numbers."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from ui.inspect.heatmap import attention_image, show_cell_tooltip

THUMB = 48
GAP = 6
AVERAGE = -1  # the "head" of a layer's average over heads


class HeadsGrid(QWidget):
    cell_clicked = Signal(int, int)  # layer, head (AVERAGE for the average)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.attention: np.ndarray | None = None  # [L, H, T, T]
        self.tokens: list[str] = []
        self.images: dict[tuple[int, int], QImage] = {}
        self.selected = (0, AVERAGE)
        self.query = -1
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Minimum)

    def set_attention(self, attention: np.ndarray | None, tokens: list[str]) -> None:
        """Draw every head of ``attention`` [L, H, T, T] (None: empty)."""
        self.attention, self.tokens = attention, list(tokens)
        self.images = {}
        if attention is not None:
            layers, heads = attention.shape[:2]
            for layer in range(layers):
                for head in range(heads):
                    self.images[layer, head] = attention_image(attention[layer, head], THUMB)
                self.images[layer, AVERAGE] = attention_image(attention[layer].mean(axis=0), THUMB)
        self.setMinimumSize(self.sizeHint())
        self.updateGeometry()
        self.update()

    def set_selection(self, layer: int, head: int, query: int) -> None:
        self.selected, self.query = (layer, head), query
        self.update()

    # -- geometry ----------------------------------------------------------------------------------------------
    def _origin(self) -> QPoint:
        fm = self.fontMetrics()
        return QPoint(fm.horizontalAdvance("layer 00") + GAP, fm.height() + GAP)

    def _columns(self) -> list[int]:
        heads = 0 if self.attention is None else self.attention.shape[1]
        return [*range(heads), AVERAGE]

    def cell_rect(self, layer: int, head: int) -> QRect:
        o = self._origin()
        col = self._columns().index(head)
        extra = GAP if head == AVERAGE else 0  # the average column stands apart
        return QRect(o.x() + col * (THUMB + GAP) + extra, o.y() + layer * (THUMB + GAP), THUMB, THUMB)

    def cell_at(self, x: int, y: int) -> tuple[int, int] | None:
        if self.attention is None:
            return None
        for layer in range(self.attention.shape[0]):
            for head in self._columns():
                if self.cell_rect(layer, head).contains(x, y):
                    return layer, head
        return None

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        if self.attention is None:
            return QSize(200, 100)
        last = self.cell_rect(self.attention.shape[0] - 1, AVERAGE)
        return QSize(last.right() + GAP, last.bottom() + GAP)

    # -- painting ----------------------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("white"))
        if self.attention is None:
            painter.setPen(QColor("#808080"))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Inspect a prompt to see every head")
            painter.end()
            return
        fm = self.fontMetrics()
        layers = self.attention.shape[0]
        t = self.attention.shape[-1]
        painter.setPen(QColor("#404040"))
        for head in self._columns():
            r = self.cell_rect(0, head)
            painter.drawText(QRect(r.x(), 0, THUMB, fm.height()), Qt.AlignmentFlag.AlignCenter,
                             "avg" if head == AVERAGE else f"h{head}")
        for layer in range(layers):
            r = self.cell_rect(layer, 0)
            if not r.adjusted(-200, -GAP, 4000, GAP).intersects(event.rect()):
                continue
            painter.setPen(QColor("#404040"))
            painter.drawText(QRect(0, r.y(), self._origin().x() - GAP, THUMB),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"layer {layer}")
            for head in self._columns():
                cell = self.cell_rect(layer, head)
                painter.drawImage(cell, self.images[layer, head])
                if 0 <= self.query < t:  # where the selected token's row is
                    y = cell.y() + int((self.query + 0.5) * THUMB / t)
                    painter.setPen(QPen(QColor("#e66100"), 2))
                    painter.drawLine(cell.x() - 4, y, cell.x() - 1, y)
                selected = (layer, head) == self.selected
                painter.setPen(QPen(QColor("#e66100") if selected else QColor("#c8c8c8"), 3 if selected else 1))
                painter.drawRect(cell.adjusted(-1, -1, 0, 0))
        painter.end()

    # -- mouse -------------------------------------------------------------------------------------------------
    def tooltip_at(self, x: int, y: int) -> str:
        cell = self.cell_at(x, y)
        if cell is None or self.attention is None:
            return ""
        layer, head = cell
        r = self.cell_rect(layer, head)
        t = self.attention.shape[-1]
        q = min(t - 1, (y - r.y()) * t // THUMB)
        k = min(t - 1, (x - r.x()) * t // THUMB)
        matrix = self.attention[layer].mean(axis=0) if head == AVERAGE else self.attention[layer, head]
        name = f"layer {layer}, {'average over heads' if head == AVERAGE else f'head {head}'}"
        if k > q:
            return f"{name}\ntoken {q} cannot attend to later token {k} (causal mask)"
        return (f"{name}\ntoken {q} {self.tokens[q]!r} → token {k} {self.tokens[k]!r}: {float(matrix[q, k]):.2%}"
                "\n(click to show this head in the strip and the matrix)")

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        cell = self.cell_at(int(event.position().x()), int(event.position().y()))
        if cell is not None:
            self.cell_clicked.emit(*cell)
        super().mousePressEvent(event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            return show_cell_tooltip(self, event, self.tooltip_at)
        return super().event(event)
