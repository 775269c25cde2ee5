"""The menu bar: File (sessions), Model (adding models, precision), View (theme, full screen, search, panels), Help."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QApplication

from ui.common import settings
from ui.common.theme import THEMES, apply_theme
from ui.shell import help as help_dialogs
from ui.shell import session_files
from ui.shell.precision_menu import PrecisionMenu

if TYPE_CHECKING:
    from ui.shell.main_window import MainWindow

THEME_KEY = "view/theme"


def build_menus(window: MainWindow) -> None:
    """Fill ``window``'s menu bar; the actions tests and shortcuts reach are kept on the window."""
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    session_actions = [
        file_menu.addAction("&New session", QKeySequence.StandardKey.New, window.new_session),
        file_menu.addAction("&Import session…", lambda: session_files.import_dialog(window)),
        file_menu.addAction("&Export session as JSON…", lambda: session_files.export_json_dialog(window)),
        file_menu.addAction("Export session as &Markdown…", lambda: session_files.export_markdown_dialog(window)),
    ]
    for action in session_actions:
        action.setEnabled(window.store is not None)
    file_menu.addSeparator()
    file_menu.addAction("&Quit", QKeySequence.StandardKey.Quit, window.close)

    model_menu = bar.addMenu("&Model")  # the toolbar's "Add model…" actions, reachable with Alt+M
    model_menu.addActions(window.model_menu.menu.actions())
    model_menu.aboutToShow.connect(window.model_menu.sync_remove_action)
    model_menu.addSeparator()
    window.precision_menu = PrecisionMenu(model_menu, window)
    window.precision_menu.chosen.connect(window.set_precision)
    window.precision_actions = window.precision_menu.actions_by_value

    view = bar.addMenu("&View")
    theme_menu = view.addMenu("&Theme")
    group = QActionGroup(theme_menu)
    window.theme_actions = {}
    current = str(settings.app_settings().value(THEME_KEY, "system"))
    for value, label in THEMES.items():
        action = theme_menu.addAction(label)
        action.setCheckable(True)
        action.setChecked(value == current)
        action.triggered.connect(lambda _checked=False, v=value: set_theme(window, v))
        group.addAction(action)
        window.theme_actions[value] = action
    full = window.full_screen_action = QAction("&Full screen", window, checkable=True)
    full.setShortcut(QKeySequence("F11"))
    full.toggled.connect(window.set_full_screen)
    view.addAction(full)
    search = window.search_action = QAction("&Search sessions…", window)
    search.setShortcut(QKeySequence.StandardKey.Find)  # Ctrl+F
    search.triggered.connect(window.focus_session_search)
    search.setEnabled(window.sessions is not None)
    view.addAction(search)
    view.addSeparator()
    if window.sessions_dock is not None:
        toggle = window.sessions_dock.toggleViewAction()
        toggle.setText("Sessions &panel")
        view.addAction(toggle)

    help_menu = bar.addMenu("&Help")
    help_menu.addAction("&Keyboard shortcuts", lambda: show_dialog(window, help_dialogs.ShortcutsDialog(window)))
    help_menu.addAction("Open the &data folder", help_dialogs.open_data_folder)
    help_menu.addSeparator()
    help_menu.addAction("&About Playground", lambda: show_dialog(window, help_dialogs.AboutDialog(window)))


def set_theme(window: MainWindow, theme: str) -> None:
    """Switch to ``theme`` now and for the next launches."""
    app = QApplication.instance()
    if isinstance(app, QApplication):
        apply_theme(app, theme)
    settings.write(THEME_KEY, theme)
    if theme in window.theme_actions:
        window.theme_actions[theme].setChecked(True)


def restore_theme() -> None:
    """At start: the theme chosen last time (system if none)."""
    app = QApplication.instance()
    if isinstance(app, QApplication):
        apply_theme(app, str(settings.app_settings().value(THEME_KEY, "system")))


def show_dialog(window: MainWindow, dialog: object) -> None:
    window.open_dialog = dialog  # kept so it is not collected; tests find it here
    dialog.show()  # type: ignore[attr-defined]
