"""A layout that places its widgets left to right and wraps to a new line when the width runs out.

Button rows use it so a narrow window (1024 px with both sidebars) shows every button on two lines instead of
forcing the window wider or clipping them: its minimum width is its widest item, its height follows its width.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem, QSizePolicy, QWidget, QWidgetItem


class FlowLayout(QLayout):
    def __init__(self, parent: QWidget | None = None, spacing: int = 6) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._stretch: set[int] = set()  # indexes of items that take the rest of their line
        self.setSpacing(spacing)
        self.setContentsMargins(0, 0, 0, 0)

    # -- QLayout -------------------------------------------------------------------------------------------------
    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802 - Qt override
        self._items.append(item)

    def add(self, widget: QWidget, stretch: bool = False) -> QWidget:
        """Add ``widget``; with ``stretch`` it widens to fill what is left of its line."""
        self.addChildWidget(widget)
        self._items.append(QWidgetItem(widget))
        if stretch:
            self._stretch.add(len(self._items) - 1)
        self.invalidate()
        return widget

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802 - Qt override
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802 - Qt override
        if not 0 <= index < len(self._items):
            return None
        self._stretch = {i - (i > index) for i in self._stretch if i != index}
        return self._items.pop(index)

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802 - Qt override
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt override
        return self._arrange(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802 - Qt override
        super().setGeometry(rect)
        self._arrange(rect, move=True)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        """Everything on one line."""
        visible = self._visible()
        width = sum(i.sizeHint().width() for _, i in visible) + self.spacing() * max(0, len(visible) - 1)
        height = max((i.sizeHint().height() for _, i in visible), default=0)
        m = self.contentsMargins()
        return QSize(width + m.left() + m.right(), height + m.top() + m.bottom())

    def minimumSize(self) -> QSize:  # noqa: N802 - Qt override
        """The widest item: anything wider wraps."""
        size = QSize()
        for _, item in self._visible():
            size = size.expandedTo(item.minimumSize())
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    # -- placing ---------------------------------------------------------------------------------------------
    def _visible(self) -> list[tuple[int, QLayoutItem]]:
        return [(i, item) for i, item in enumerate(self._items)
                if not (item.widget() is not None and item.widget().isHidden())]

    def _arrange(self, rect: QRect, move: bool) -> int:
        """Lay the items out in ``rect`` (or only measure); return the height used."""
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        lines: list[list[tuple[int, QLayoutItem]]] = [[]]
        x = 0
        for index, item in self._visible():
            w = item.sizeHint().width()
            if lines[-1] and x + w > area.width():
                lines.append([])
                x = 0
            lines[-1].append((index, item))
            x += w + self.spacing()
        if not lines[0]:
            return m.top() + m.bottom()
        y = area.y()
        for line in lines:
            if not line:
                continue
            height = max(item.sizeHint().height() for _, item in line)
            used = sum(item.sizeHint().width() for _, item in line) + self.spacing() * (len(line) - 1)
            extra = max(0, area.width() - used)
            stretchers = [i for i, _ in line if i in self._stretch]
            x = area.x()
            for index, item in line:
                w = min(item.sizeHint().width(), area.width())
                if stretchers and index in stretchers:
                    w += extra // len(stretchers)
                if move:
                    policy = item.widget().sizePolicy() if item.widget() is not None else None
                    h = height if policy is not None and policy.verticalPolicy() != QSizePolicy.Policy.Fixed \
                        else item.sizeHint().height()
                    item.setGeometry(QRect(QPoint(x, y + (height - h) // 2), QSize(w, h)))
                x += w + self.spacing()
            y += height + self.spacing()
        return y - self.spacing() - rect.y() + m.bottom()


def flow_row(*widgets: QWidget, stretch: tuple[QWidget, ...] = ()) -> QWidget:
    """A widget holding ``widgets`` in a FlowLayout (those in ``stretch`` fill what is left of their line)."""
    host = QWidget()
    layout = FlowLayout(host)
    for widget in widgets:
        layout.add(widget, stretch=widget in stretch)
    return host
