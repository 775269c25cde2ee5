"""What the window looked like last time: size and position, docks and toolbar, every named splitter, the tab.

Kept in the data dir's ``window.ini`` (QSettings: ``saveGeometry`` / ``saveState``). A first launch sizes the
window to fit the screen it opens on (down to 1024×700).
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray
from PySide6.QtWidgets import QMainWindow, QSplitter, QTabWidget

from ui.common.settings import app_settings

DEFAULT_SIZE = (1280, 820)


def restore(window: QMainWindow) -> None:
    s = app_settings()
    geometry = s.value("window/geometry")
    if not (isinstance(geometry, QByteArray) and window.restoreGeometry(geometry)):
        screen = window.screen().availableGeometry() if window.screen() else None
        w, h = DEFAULT_SIZE
        if screen is not None:
            w, h = min(w, screen.width()), min(h, screen.height())
        window.resize(w, h)
    state = s.value("window/state")
    if isinstance(state, QByteArray):
        window.restoreState(state)
    for splitter in window.findChildren(QSplitter):
        saved = s.value(f"splitters/{splitter.objectName()}") if splitter.objectName() else None
        if isinstance(saved, QByteArray):
            splitter.restoreState(saved)
    tabs = window.centralWidget()
    index = s.value("window/tab")
    if isinstance(tabs, QTabWidget) and index is not None and str(index).isdigit():
        tabs.setCurrentIndex(min(int(index), tabs.count() - 1))


def save(window: QMainWindow) -> None:
    s = app_settings()
    s.setValue("window/geometry", window.saveGeometry())
    s.setValue("window/state", window.saveState())
    for splitter in window.findChildren(QSplitter):
        if splitter.objectName():
            s.setValue(f"splitters/{splitter.objectName()}", splitter.saveState())
    tabs = window.centralWidget()
    if isinstance(tabs, QTabWidget):
        s.setValue("window/tab", tabs.currentIndex())
    s.sync()
