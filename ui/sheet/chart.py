"""Accuracy against the number of example rows k, one line per model: drawn with QPainter (no plotting library)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from playground.tasks.sheet_eval import EvalPoint
from playground.tasks.sheet_transfer import LABELS as TRANSFER_LINES

# Colour-blind-safe (Okabe-Ito), in the order models are added.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
METRICS = {"normalised": "normalised match", "exact": "exact match", "numeric": "numeric within tolerance"}


def x_axis_label(models: list[str]) -> str:
    """What k counts: example rows in the prompt, or (a few-shot vs LoRA chart) rows in the prompt or trained on."""
    if models and set(models) <= set(TRANSFER_LINES.values()):
        return "example rows k: in the prompt (few-shot) or trained on (LoRA)"
    return "example rows in the prompt (k)"


def line_pen(model: str, colour: QColor) -> QPen:
    """Solid, except the fine-tuned lines of a few-shot vs LoRA chart: dashed, so a line they cover still shows
    (at k = 0 all three coincide)."""
    pen = QPen(colour, 2.2)
    if model in (TRANSFER_LINES["lora"], TRANSFER_LINES["lora+few-shot"]):
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


def metric_value(point: EvalPoint, metric: str) -> float | None:
    """The point's score for ``metric`` ("exact" | "normalised" | "numeric"); None when it does not apply."""
    return getattr(point, metric)


class AccuracyChart(QWidget):
    """Lines of accuracy (0-100%) over k; x is categorical (0, 1, 2, 4, 8 evenly spaced), as in the GPT-3 plot."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.points: list[EvalPoint] = []
        self.metric_key = "normalised"
        self.title = ""
        self.setMinimumSize(260, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAutoFillBackground(False)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(560, 300)

    # -- content ---------------------------------------------------------------------------------------------
    def set_points(self, model: str, points: list[EvalPoint], title: str = "") -> None:
        """Replace ``model``'s line (other models' lines stay, for comparison)."""
        self.points = [p for p in self.points if p.model != model] + list(points)
        if title:
            self.title = title
        self.update()

    def clear(self) -> None:
        self.points = []
        self.title = ""
        self.update()

    def set_metric(self, metric: str) -> None:
        self.metric_key = metric
        self.update()

    def models(self) -> list[str]:
        """Models in the order their lines were added."""
        return list(dict.fromkeys(p.model for p in self.points))

    def series(self) -> dict[str, list[tuple[int, float]]]:
        """Per model, the (k, accuracy) pairs for the current metric, sorted by k."""
        out: dict[str, list[tuple[int, float]]] = {}
        for model in self.models():
            pts = [(p.k, metric_value(p, self.metric_key)) for p in self.points if p.model == model]
            out[model] = sorted((k, v) for k, v in pts if v is not None)
        return out

    def save_png(self, path: str | Path) -> bool:
        """Write the chart as it is drawn on screen; return whether the file was written."""
        return self.grab().save(str(path), "PNG")

    def heading(self) -> str:
        """The chart's title line: what is plotted, by which metric."""
        return f"{self.title or 'Accuracy vs example rows'} — {METRICS.get(self.metric_key, self.metric_key)}"

    def event(self, event: QEvent) -> bool:  # Qt override: the title line whole, where it is cut short
        if event.type() == QEvent.Type.ToolTip:
            QToolTip.showText(event.globalPos(), self.heading(), self)
            return True
        return super().event(event)

    # -- drawing ---------------------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("white"))
        font = QFont(self.font())
        painter.setFont(font)
        metrics = painter.fontMetrics()
        series = self.series()
        ks = sorted({k for pts in series.values() for k, _ in pts})
        painter.setPen(QColor("#202020"))
        bold = QFont(font)
        bold.setBold(True)
        painter.setFont(bold)
        heading = painter.fontMetrics().elidedText(self.heading(), Qt.TextElideMode.ElideRight,
                                                   max(20, self.width() - 8))  # whole in the tooltip
        painter.drawText(QRectF(0, 4, self.width(), metrics.height() + 4), Qt.AlignmentFlag.AlignHCenter, heading)
        painter.setFont(font)
        left, top = metrics.horizontalAdvance("100%") + 44, metrics.height() + 16
        plot = QRectF(left, top, max(10, self.width() - left - 20), max(10, self.height() - top - 2.8 * metrics.height()
                                                                        - 8))
        if not ks:
            painter.setPen(QColor("#808080"))
            painter.drawRect(plot)
            painter.drawText(plot.adjusted(6, 6, -6, -6), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             "Choose a column with known values and press Evaluate: "
                             "accuracy is plotted against the number of example rows k")
            painter.end()
            return

        def x_of(k: int) -> float:
            i = ks.index(k)
            return plot.left() + plot.width() * ((i + 0.5) / len(ks))

        def y_of(v: float) -> float:
            return plot.bottom() - plot.height() * v

        # Grid and axes.
        painter.setPen(QPen(QColor("#e3e3e3"), 1))
        for i in range(6):
            y = y_of(i / 5)
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        painter.setPen(QPen(QColor("#404040"), 1))
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        painter.drawLine(plot.bottomLeft(), plot.topLeft())
        for i in range(6):
            y = y_of(i / 5)
            painter.drawLine(QPointF(plot.left() - 4, y), QPointF(plot.left(), y))
            painter.drawText(QRectF(0, y - metrics.height() / 2, plot.left() - 8, metrics.height()),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{i * 20}%")
        for k in ks:
            x = x_of(k)
            painter.drawLine(QPointF(x, plot.bottom()), QPointF(x, plot.bottom() + 4))
            painter.drawText(QRectF(x - 30, plot.bottom() + 5, 60, metrics.height()), Qt.AlignmentFlag.AlignHCenter,
                             str(k))
        painter.drawText(QRectF(plot.left(), plot.bottom() + 5 + metrics.height(), plot.width(), metrics.height()),
                         Qt.AlignmentFlag.AlignHCenter, x_axis_label(list(series)))
        painter.save()
        painter.translate(12, plot.center().y())
        painter.rotate(-90)
        painter.drawText(QRectF(-plot.height() / 2, -metrics.height() / 2 - 2, plot.height(), metrics.height() + 4),
                         Qt.AlignmentFlag.AlignCenter, "accuracy")
        painter.restore()

        # One line with markers per model.
        for n, (model, pts) in enumerate(series.items()):
            colour = QColor(PALETTE[n % len(PALETTE)])
            painter.setPen(line_pen(model, colour))
            coords = [QPointF(x_of(k), y_of(v)) for k, v in pts]
            for a, b in zip(coords, coords[1:], strict=False):
                painter.drawLine(a, b)
            painter.setBrush(colour)
            for c in coords:
                painter.drawEllipse(c, 4.0, 4.0)
            painter.setBrush(Qt.BrushStyle.NoBrush)

        # Legend, top-left inside the plot.
        row_h = metrics.height() + 2
        width = max((metrics.horizontalAdvance(m) for m in series), default=0) + 34
        box = QRectF(plot.left() + 8, plot.top() + 6, width, row_h * len(series) + 6)
        painter.setPen(QPen(QColor("#b0b0b0"), 1))
        painter.setBrush(QColor(255, 255, 255, 225))
        painter.drawRect(box)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for n, model in enumerate(series):
            colour = QColor(PALETTE[n % len(PALETTE)])
            y = box.top() + 3 + row_h * n + row_h / 2
            painter.setPen(line_pen(model, colour))
            painter.drawLine(QPointF(box.left() + 6, y), QPointF(box.left() + 24, y))
            painter.setPen(QColor("#202020"))
            painter.drawText(QRectF(box.left() + 30, y - row_h / 2, width - 30, row_h),
                             Qt.AlignmentFlag.AlignVCenter, model)
        painter.end()
