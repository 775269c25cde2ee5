"""One head's (or a layer's average) attention matrix, large: row = the token attending, column = the token
attended to; the grey triangle is the causal mask. Short texts get their tokens along both axes. Hover for the
weight, click a row to select that token."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from ui.inspect.heatmap import attention_image, show_cell_tooltip, visible

MAX_LABELLED = 64  # up to this many tokens, each row and column is labelled
MAX_PIXELS = 512  # the image is block-averaged to this many pixels a side before scaling


class MatrixView(QWidget):
    row_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.matrix: np.ndarray | None = None
        self.tokens: list[str] = []
        self.caption = ""
        self.query = -1
        self._image: QImage | None = None
        self.setMouseTracking(True)
        self.setMinimumSize(240, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_matrix(self, matrix: np.ndarray | None, tokens: list[str], caption: str, query: int) -> None:
        self.matrix, self.tokens, self.caption, self.query = matrix, list(tokens), caption, query
        self._image = None if matrix is None else attention_image(matrix, MAX_PIXELS)
        self.update()

    def set_query(self, query: int) -> None:
        self.query = query
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(420, 420)

    def plot_rect(self) -> QRect:
        """Where the matrix is drawn: a square, with room for labels on the left and top when there are any."""
        fm = self.fontMetrics()
        labelled = self.matrix is not None and len(self.tokens) <= MAX_LABELLED
        margin = (min(max((fm.horizontalAdvance(visible(t)) for t in self.tokens), default=0), 110) + 8
                  if labelled else 4)
        top = fm.height() + 6 + (margin if labelled else 0)
        side = max(10, min(self.width() - margin - 4, self.height() - top - 4))
        return QRect(margin, top, side, side)

    def cell_at(self, x: int, y: int) -> tuple[int, int] | None:
        if self.matrix is None:
            return None
        r = self.plot_rect()
        if not r.contains(x, y):
            return None
        t = self.matrix.shape[0]
        return min(t - 1, (y - r.y()) * t // r.height()), min(t - 1, (x - r.x()) * t // r.width())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("white"))
        fm = self.fontMetrics()
        painter.setPen(QColor("#202020"))
        painter.drawText(QRect(0, 2, self.width(), fm.height() + 2), Qt.AlignmentFlag.AlignHCenter, self.caption)
        if self.matrix is None or self._image is None:
            painter.end()
            return
        r = self.plot_rect()
        t = self.matrix.shape[0]
        painter.drawImage(r, self._image)
        cell = r.height() / t
        if t <= MAX_LABELLED:
            step = max(1, int(np.ceil(fm.height() / max(cell, 1e-6))))  # skip labels that would overlap
            painter.setPen(QColor("#404040"))
            for i in range(0, t, step):
                label = fm.elidedText(visible(self.tokens[i]), Qt.TextElideMode.ElideRight, r.x() - 8)
                y = r.y() + (i + 0.5) * cell
                painter.drawText(QRectF(0, y - fm.height() / 2, r.x() - 4, fm.height()),
                                 Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)
                painter.save()
                painter.translate(r.x() + (i + 0.5) * cell, r.y() - 4)
                painter.rotate(-90)
                painter.drawText(QRectF(0, -fm.height() / 2, r.y(), fm.height()), Qt.AlignmentFlag.AlignLeft
                                 | Qt.AlignmentFlag.AlignVCenter, label)
                painter.restore()
        if 0 <= self.query < t:
            painter.setPen(QPen(QColor("#e66100"), 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRectF(r.x(), r.y() + self.query * cell, r.width(), max(cell, 2.0)))
        painter.end()

    def tooltip_at(self, x: int, y: int) -> str:
        cell = self.cell_at(x, y)
        if cell is None:
            return ""
        q, k = cell
        if k > q:
            return f"token {q} {self.tokens[q]!r} cannot attend to later token {k} (causal mask)"
        return (f"token {q} {self.tokens[q]!r} → token {k} {self.tokens[k]!r}: "
                f"{float(self.matrix[q, k]):.2%}\n{self.caption}")

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        cell = self.cell_at(int(event.position().x()), int(event.position().y()))
        if cell is not None:
            self.row_clicked.emit(cell[0])
        super().mousePressEvent(event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            return show_cell_tooltip(self, event, self.tooltip_at)
        return super().event(event)
