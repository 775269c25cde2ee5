"""What a desktop app is expected to have (issue 16, items 10 and 11): a light / dark / system theme with readable
probability colours, F11, Ctrl+F, a Help menu, and the window, its splitters and "Show probabilities" remembered."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QPalette
from PySide6.QtWidgets import QApplication, QSplitter

from playground import paths
from tests.common.scripted import ScriptedRunner
from ui.common.theme import contrast_ratio, is_dark, probability_colour, text_on
from ui.shell.main_window import MainWindow
from ui.shell.menus import set_theme

WORDS = [" likely", " unlikely", " likely", " unlikely"]


@pytest.fixture
def open_window(qtbot):
    windows = []

    def make():
        w = MainWindow(ScriptedRunner(WORDS), autoload=False)
        qtbot.addWidget(w)
        with qtbot.waitActive(w):  # window shortcuts (Ctrl+F, F11) need the active window
            w.show()
            w.activateWindow()
        windows.append(w)
        return w

    yield make
    if windows:
        set_theme(windows[-1], "system")  # the app palette is shared by every later test


def menu(window: MainWindow, title: str):
    return next(a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == title)


def action(window: MainWindow, menu_title: str, text: str):
    return next(a for a in menu(window, menu_title).actions() if a.text().replace("&", "").startswith(text))


def token_contrast(tab) -> float:
    """The worst text/background contrast among the coloured tokens of the Prompt tab's output."""
    from PySide6.QtGui import QTextCursor

    worst = 21.0
    for i in range(len(tab.output.toPlainText())):
        cursor = QTextCursor(tab.output.document())
        cursor.setPosition(i + 1)
        fmt = cursor.charFormat()
        worst = min(worst, contrast_ratio(fmt.foreground().color(), fmt.background().color()))
    return worst


def test_dark_and_light_themes_keep_probability_colours_readable(qtbot, open_window):
    window = open_window()
    tab = window.prompt_tab
    tab.prompt.setPlainText("go")
    tab.show_probs.setChecked(True)
    with qtbot.waitSignal(tab.run_finished, timeout=5000):
        tab.run_button.click()
    action(window, "View", "Theme").menu().actions()[2].trigger()  # Dark
    assert is_dark() and window.theme_actions["dark"].isChecked()
    # Re-coloured for the new theme (palette changes reach widgets as posted events).
    qtbot.waitUntil(lambda: tab.output.background_at(0) == probability_colour(0.9, dark=True), timeout=2000)
    assert token_contrast(tab) >= 4.5
    window.theme_actions["light"].trigger()
    qtbot.waitUntil(lambda: tab.output.background_at(0) == probability_colour(0.9, dark=False), timeout=2000)
    assert not is_dark() and token_contrast(tab) >= 4.5
    for p in (0.0, 0.3, 0.6, 1.0):  # every colour of the scale, both themes
        for dark in (False, True):
            colour = probability_colour(p, dark)
            assert contrast_ratio(text_on(colour), colour) >= 4.5
    window.close()
    again = open_window()  # the choice is remembered
    assert again.theme_actions["light"].isChecked()


def test_f11_full_screen_and_ctrl_f_searches_sessions(qtbot, open_window):
    window = open_window()
    window.prompt_tab.prompt.setFocus()
    window.sessions_dock.hide()
    qtbot.keyClick(window.prompt_tab.prompt, "f", modifier=Qt.KeyboardModifier.ControlModifier)
    assert window.sessions_dock.isVisible() and window.sessions.search.hasFocus()
    qtbot.keyClick(window.prompt_tab.prompt, Qt.Key.Key_F11)
    qtbot.waitUntil(lambda: bool(window.windowState() & Qt.WindowState.WindowFullScreen), timeout=2000)
    assert window.full_screen_action.isChecked()
    qtbot.keyClick(window.prompt_tab.prompt, Qt.Key.Key_F11)
    qtbot.waitUntil(lambda: not window.windowState() & Qt.WindowState.WindowFullScreen, timeout=2000)


def test_help_menu_shortcuts_about_and_data_folder(qtbot, open_window, monkeypatch):
    window = open_window()
    action(window, "Help", "Keyboard shortcuts").trigger()
    shortcuts = window.open_dialog
    keys = [shortcuts.table.item(r, 0).text() for r in range(shortcuts.table.rowCount())]
    assert {"Ctrl+Enter", "Esc", "Ctrl+F", "F11", "Ctrl+N"} <= set(keys)
    shortcuts.close()
    action(window, "Help", "About").trigger()
    about = window.open_dialog.text.text()
    assert "Playground 0.1.0" in about and "PySide6" in about and "torch" in about and "transformers" in about
    assert str(paths.data_dir()) in about and "playground.log" in about
    window.open_dialog.close()
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url) or True))
    action(window, "Help", "Open the data folder").trigger()
    assert [u.toLocalFile() for u in opened] == [str(paths.data_dir())]


def test_window_splitters_tab_and_show_probabilities_are_remembered(qtbot, open_window):
    window = open_window()
    size = (window.minimumSizeHint().width(), 710)  # not the first-launch size (the 800×800 offscreen screen's)
    window.resize(*size)
    splitter = window.findChild(QSplitter, "prompt_inputs")
    splitter.setSizes([100, 300, 200])
    sizes = splitter.sizes()
    window.prompt_tab.show_probs.setChecked(True)
    window.tabs.setCurrentWidget(window.layout_tab)
    window.close()

    again = open_window()
    assert (again.width(), again.height()) == size
    assert again.tabs.currentWidget() is again.layout_tab
    assert again.params_dock.current() is again.layout_tab.params
    again.tabs.setCurrentWidget(again.prompt_tab)  # laid out at its real size once shown
    qtbot.wait(20)
    assert again.findChild(QSplitter, "prompt_inputs").sizes() == sizes
    assert again.prompt_tab.show_probs.isChecked()


def test_a_first_launch_fits_a_small_screen(qtbot, open_window, monkeypatch):
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QScreen

    monkeypatch.setattr(QScreen, "availableGeometry", lambda self: QRect(0, 0, 1024, 700))
    window = open_window()
    assert window.width() <= 1024 and window.height() <= 700
    assert QApplication.palette().color(QPalette.ColorRole.Window).isValid()
