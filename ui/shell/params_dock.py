"""The Parameters sidebar: the current tab's own panel (each tab has one, with its own defaults), scrolling when
the window is short; hidden where nothing uses it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QScrollArea, QStackedWidget, QWidget

from ui.common.params_panel import ParamsPanel


class ParamsDock(QDockWidget):
    def __init__(self, window: QMainWindow) -> None:
        super().__init__("Parameters", window)
        self.setObjectName("params")
        self.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.panels: dict[QWidget, ParamsPanel] = {}  # tab -> its panel
        self.stack = QStackedWidget()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        # A narrow window scrolls the panel sideways rather than cut its fields off.
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setWidget(self.stack)
        self.scroll = scroll
        self.setWidget(scroll)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self)

    def add(self, tab: QWidget, panel: ParamsPanel) -> None:
        self.panels[tab] = panel
        self.stack.addWidget(panel)

    def follow(self, tab: QWidget, uses_parameters: bool = True) -> None:
        """Show ``tab``'s panel (titled with whose values they are), or hide when it has none or does not use it."""
        panel = self.panels.get(tab)
        if panel is None or not uses_parameters:
            self.hide()
            return
        self.stack.setCurrentWidget(panel)
        self.setWindowTitle(f"Parameters · {panel.spec.title}")
        self.show()
        self.fit(panel)

    def fit(self, panel: ParamsPanel) -> None:
        """Widen the dock to show its fields whole when the window has room (at most a fifth of its width): a
        width saved in a small window, or dragged narrow, would otherwise leave them cut off on a large one. Where
        a fifth is too narrow for labels beside their fields (a 1024 px window), the labels go above them, and
        the sidebar on the other side gives up what the fields still lack."""
        window = self.parentWidget()
        if not isinstance(window, QMainWindow) or self.isFloating():
            return
        room = window.width() // 5
        self._compact(panel.wide_width() + 8 > room)
        wanted = panel.sizeHint().width() + self.scroll.verticalScrollBar().sizeHint().width() + 8
        target = min(wanted, room)
        if self.width() < target:
            window.resizeDocks([self], [target], Qt.Orientation.Horizontal)
        short = panel.minimumSizeHint().width() + 8 - self.width()
        if short > 0:  # the central area is at its minimum: take it from the other side's sidebar
            for other in window.findChildren(QDockWidget):
                if other is not self and other.isVisible() and not other.isFloating() and \
                        window.dockWidgetArea(other) != window.dockWidgetArea(self):
                    give = min(short, other.width() - other.minimumSizeHint().width())
                    if give > 0:
                        window.resizeDocks([other, self], [other.width() - give, self.width() + give],
                                           Qt.Orientation.Horizontal)
                    break

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        """Dragged narrower than the labels-beside layout: labels above (and back when dragged wide again)."""
        super().resizeEvent(event)
        panel = self.current()
        if panel is not None and not self.isFloating():
            self._compact(self.scroll.viewport().width() < panel.wide_width())

    def _compact(self, on: bool) -> None:
        # Every tab's panel alike: the stack is as wide as its widest panel, shown or not.
        for panel in self.panels.values():
            panel.set_compact(on)

    def current(self) -> ParamsPanel | None:
        widget = self.stack.currentWidget()
        return widget if isinstance(widget, ParamsPanel) and self.isVisible() else None
