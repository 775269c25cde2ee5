"""The window's sessions sidebar: the dock, its wiring to the tabs (runs saved, drafts debounced), and the session
opened at launch (the last one opened, else the newest)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget

from ui.common import settings
from ui.shell.sessions_panel import SessionsPanel

if TYPE_CHECKING:
    from ui.shell.main_window import MainWindow

LAST_SESSION = "sessions/last"
PURGE_AFTER = timedelta(days=7)  # deleted sessions stay restorable (by undo, or by hand) this long


def build_sessions(window: MainWindow) -> None:
    assert window.store is not None
    window.store.purge_deleted(older_than=PURGE_AFTER)
    window.sessions = SessionsPanel(window.store)
    dock = window.sessions_dock = QDockWidget("Sessions", window)
    dock.setObjectName("sessions")
    dock.setWidget(window.sessions)
    dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                     | QDockWidget.DockWidgetFeature.DockWidgetClosable)
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
    window.sessions.about_to_switch.connect(window.save_drafts)
    window.sessions.session_opened.connect(window._on_session_opened)
    window.sessions.run_opened.connect(window._on_run_opened)
    window.prompt_tab.branches.run_source = lambda: window.store.runs(window.current_session, "prompt")
    window.compare_tab.run_source = lambda: window.store.runs(window.current_session, "compare")
    for tab in window.session_tabs:
        tab.run_ended.connect(window._on_run_ended)
        tab.changed.connect(window._draft_timer.start)
    for panel in window.params_dock.panels.values():
        panel.changed.connect(window._draft_timer.start)
    existing = [s.id for s in window.store.list()]
    last = settings.app_settings().value(LAST_SESSION)  # opening a session no longer makes it the newest
    last = int(last) if str(last).isdigit() and int(last) in existing else None
    window.sessions.select(last or (existing[0] if existing else window.store.create("First session").id))
