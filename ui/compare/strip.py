"""The Compare columns side by side in a scroll area that keeps them as tall as the view.

QScrollArea's own resizing sizes a widget whose layout wraps text (the columns' titles) at its preferred height and
forgets the horizontal scroll bar, so in a 700-pixel window the columns' footers (speed, confidence) fell below the
view. Here the strip is sized by hand: the view's height (less a horizontal bar when the columns are wider than the
view), never below the columns' minimum; wider than the view only when the columns need it, and then it scrolls.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QHBoxLayout, QScrollArea, QWidget


class ColumnStrip(QScrollArea):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.strip = QWidget()
        self.strip_layout = QHBoxLayout(self.strip)
        self.strip_layout.setContentsMargins(0, 0, 0, 0)
        self.setWidgetResizable(False)
        self.setWidget(self.strip)
        self.strip.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if watched is self.strip and event.type() == QEvent.Type.LayoutRequest:
            self.strip_layout.activate()
            self.fit()
        return False

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self.fit()

    def fit(self) -> None:
        """Size the strip to the view, scroll bars accounted for."""
        minimum = self.strip.minimumSizeHint()
        view = self.maximumViewportSize()
        wide = minimum.width() > view.width()
        height = view.height() - (self.horizontalScrollBar().sizeHint().height() if wide else 0)
        tall = minimum.height() > height
        width = view.width() - (self.verticalScrollBar().sizeHint().width() if tall else 0)
        if tall and not wide and minimum.width() > width:  # the vertical bar made it too narrow after all
            height -= self.horizontalScrollBar().sizeHint().height()
        self.strip.resize(max(width, minimum.width()), max(height, minimum.height()))
