"""The token strip: every token of the inspected text as a chip, shaded by how much the selected token attends to
it; click a chip to select that token, hover it for the number."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QEvent, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPaintEvent, QPen, QResizeEvent
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from ui.inspect.heatmap import text_colour, visible, weight_colour

# Where each token came from: its chip's outline.
KIND_PENS = {"source": QColor("#9a9a9a"), "prompt": QColor("#404040"), "completion": QColor("#1b7f3b"),
             "generated": QColor("#7b2cbf")}
KIND_NAMES = {"source": "source text", "prompt": "prompt", "completion": "completion", "generated": "generated here"}
SELECTED = QColor("#e66100")
FUTURE = QColor("#f2f2f2")
PAD, GAP = 4, 3


@dataclass
class _Chip:
    rect: QRect
    label: str


class TokenStrip(QWidget):
    token_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tokens: list[str] = []
        self.kinds: list[str] = []
        self.weights: np.ndarray | None = None  # [T]: what the selected token gives each token (0 after it)
        self.query = -1
        self.caption = ""  # what the weights are ("layer 3, head 2")
        self._chips: list[_Chip] = []
        self._laid_out_for = -1
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)

    # -- content -----------------------------------------------------------------------------------------------
    def set_tokens(self, tokens: list[str], kinds: list[str]) -> None:
        self.tokens, self.kinds = list(tokens), list(kinds)
        self.weights, self.query = None, -1
        self._laid_out_for = -1
        self._layout()
        self.update()

    def set_weights(self, weights: np.ndarray | None, query: int, caption: str = "") -> None:
        """Shade each chip by ``weights`` (the selected token's attention row) and outline ``query``."""
        self.weights, self.query, self.caption = weights, query, caption
        self.update()

    def chip_rect(self, index: int) -> QRect:
        return self._chips[index].rect

    def index_at(self, x: int, y: int) -> int:
        for i, chip in enumerate(self._chips):
            if chip.rect.contains(x, y):
                return i
        return -1

    def tooltip_at(self, index: int) -> str:
        kind = KIND_NAMES.get(self.kinds[index], "") if index < len(self.kinds) else ""
        head = f"token {index} {self.tokens[index]!r} ({kind})"
        if self.weights is None or self.query < 0:
            return head
        if index > self.query:
            return f"{head}\nafter token {self.query}: masked (a token cannot attend to later ones)"
        return (f"{head}\ntoken {self.query} {self.tokens[self.query]!r} gives it "
                f"{float(self.weights[index]):.2%} of its attention ({self.caption})")

    # -- layout and painting -----------------------------------------------------------------------------------
    def _line_height(self) -> int:
        return 2 * self.fontMetrics().height() + 2 * PAD

    def _layout(self) -> None:
        width = max(self.width(), 200)
        if width == self._laid_out_for:
            return
        self._laid_out_for = width
        fm = self.fontMetrics()
        x = y = 0
        line = self._line_height()
        self._chips = []
        for token in self.tokens:
            label = visible(token)
            w = max(fm.horizontalAdvance(label), fm.horizontalAdvance("00%")) + 2 * PAD
            if x > 0 and x + w > width:
                x, y = 0, y + line + GAP
            self._chips.append(_Chip(QRect(x, y, w, line), label))
            x += w + GAP
        self.setMinimumHeight(y + line + GAP if self.tokens else line)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(600, self.minimumHeight())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        self._layout()
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        self._layout()
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("white"))
        fm = self.fontMetrics()
        small = QFont(self.font())
        small.setPointSizeF(max(6.0, small.pointSizeF() * 0.8))
        for i, chip in enumerate(self._chips):
            if not chip.rect.intersects(event.rect()):
                continue
            w = 0.0
            future = self.weights is not None and i > self.query
            if self.weights is not None and not future:
                w = float(self.weights[i])
            painter.fillRect(chip.rect, FUTURE if future else weight_colour(w))
            selected = i == self.query
            pen = QPen(SELECTED if selected else KIND_PENS.get(self.kinds[i] if i < len(self.kinds) else "",
                                                               QColor("#404040")), 3 if selected else 1)
            if i < len(self.kinds) and self.kinds[i] == "source" and not selected:
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawRect(chip.rect.adjusted(0, 0, -1, -1))
            painter.setPen(QColor("#b0b0b0") if future else text_colour(w))
            painter.setFont(self.font())
            top = QRect(chip.rect.x(), chip.rect.y() + PAD, chip.rect.width(), fm.height())
            painter.drawText(top, Qt.AlignmentFlag.AlignCenter, chip.label)
            if self.weights is not None and not future and w >= 0.005:
                painter.setFont(small)
                bottom = QRect(chip.rect.x(), chip.rect.y() + PAD + fm.height(), chip.rect.width(), fm.height())
                painter.drawText(bottom, Qt.AlignmentFlag.AlignCenter, f"{w:.0%}")
        painter.end()

    # -- mouse -------------------------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        index = self.index_at(int(event.position().x()), int(event.position().y()))
        if index >= 0 and event.button() == Qt.MouseButton.LeftButton:
            self.token_clicked.emit(index)
        super().mousePressEvent(event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            index = self.index_at(event.pos().x(), event.pos().y())
            if index >= 0:
                QToolTip.showText(event.globalPos(), self.tooltip_at(index), self)
            else:
                QToolTip.hideText()
            return True
        return super().event(event)
