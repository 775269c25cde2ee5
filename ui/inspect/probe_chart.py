"""The probe's chart: for each slot value, one horizontal bar per continuation, its share of the continuations'
probability (they sum to 100% per value), as in the GPT-3 paper's occupation probe. QPainter, no plotting
library."""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from playground.domain.inspect import ProbeRow
from playground.tasks.probe import shares

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")  # Okabe-Ito


class ProbeChart(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[ProbeRow] = []
        self.title = ""
        self.setMinimumSize(320, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_rows(self, rows: list[ProbeRow], title: str = "") -> None:
        self.rows, self.title = list(rows), title
        self.update()

    def values(self) -> list[str]:
        return list(dict.fromkeys(r.value for r in self.rows))

    def continuations(self) -> list[str]:
        return list(dict.fromkeys(r.continuation for r in self.rows))

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(520, 320)

    def save_png(self, path: str | Path) -> bool:
        """Write the chart as drawn; True when the file was written."""
        return self.grab().save(str(path), "PNG")

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("white"))
        fm = painter.fontMetrics()
        bold = QFont(self.font())
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(QColor("#202020"))
        painter.drawText(QRectF(0, 4, self.width(), fm.height() + 2), Qt.AlignmentFlag.AlignHCenter,
                         self.title or "Share of each continuation, per slot value")
        painter.setFont(self.font())
        values, conts = self.values(), self.continuations()
        if not self.rows:
            painter.setPen(QColor("#808080"))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                             "Fill in a template, values and continuations, then run the probe")
            painter.end()
            return
        share = {(r.value, r.continuation): s for r, s in zip(self.rows, shares(self.rows), strict=True)}
        prob = {(r.value, r.continuation): math.exp(r.logprob) for r in self.rows}
        legend_h = fm.height() + 8
        left = min(max(fm.horizontalAdvance(v) for v in values), 160) + 12
        top, bottom = fm.height() + 10 + legend_h, fm.height() + 10
        label_w = fm.horizontalAdvance("100% (p 100.0%)") + 8  # the numbers after the longest bar
        plot = QRectF(left, top, max(10, self.width() - left - label_w), max(10, self.height() - top - bottom))
        # Legend: one swatch per continuation.
        x = left
        for i, cont in enumerate(conts):
            painter.fillRect(QRectF(x, fm.height() + 10, 12, 12), QColor(PALETTE[i % len(PALETTE)]))
            label = repr(cont)
            painter.setPen(QColor("#202020"))
            painter.drawText(QRectF(x + 16, fm.height() + 8, fm.horizontalAdvance(label) + 4, fm.height()),
                             Qt.AlignmentFlag.AlignVCenter, label)
            x += 16 + fm.horizontalAdvance(label) + 18
        # Grid at 0, 25, 50, 75, 100%.
        for i in range(5):
            gx = plot.left() + plot.width() * i / 4
            painter.setPen(QPen(QColor("#e3e3e3") if i else QColor("#404040"), 1))
            painter.drawLine(int(gx), int(plot.top()), int(gx), int(plot.bottom()))
            painter.setPen(QColor("#404040"))
            painter.drawText(QRectF(gx - 30, plot.bottom() + 2, 60, fm.height()), Qt.AlignmentFlag.AlignHCenter,
                             f"{i * 25}%")
        group = plot.height() / len(values)
        bar = max(2.0, (group - 6) / len(conts))
        for vi, value in enumerate(values):
            y0 = plot.top() + vi * group + 3
            painter.setPen(QColor("#202020"))
            painter.drawText(QRectF(0, y0, left - 8, group - 6), Qt.AlignmentFlag.AlignRight
                             | Qt.AlignmentFlag.AlignVCenter, fm.elidedText(value, Qt.TextElideMode.ElideRight,
                                                                             left - 10))
            for ci, cont in enumerate(conts):
                s = share.get((value, cont), 0.0)
                rect = QRectF(plot.left(), y0 + ci * bar, plot.width() * s, bar - 1)
                painter.fillRect(rect, QColor(PALETTE[ci % len(PALETTE)]))
                if bar >= fm.height() * 0.8:
                    painter.setPen(QColor("#404040"))
                    painter.drawText(QRectF(rect.right() + 4, rect.top(), label_w, bar), Qt.AlignmentFlag.AlignVCenter,
                                     f"{s:.0%} (p {prob.get((value, cont), 0.0):.1%})")
        painter.end()
