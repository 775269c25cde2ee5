"""The sessions sidebar as a user meets it: opening a session changes nothing in it, switching leaves no stale text
behind, the history says what each run was (issue 16, items 6 and 12)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.common.scripted import ScriptedRunner
from ui.shell.main_window import MainWindow

DEBOUNCE_WAIT_MS = 1300  # longer than the draft debounce: any save it would make has happened


@pytest.fixture
def window(qtbot):
    w = MainWindow(ScriptedRunner([" w1", " w2"]), autoload=False)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    return w


def click_session(qtbot, panel, row: int) -> None:
    rect = panel.list.visualItemRect(panel.list.item(row))
    qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def listed(panel) -> list[str]:
    return [panel.list.item(i).text() for i in range(panel.list.count())]


def test_opening_a_session_does_not_change_its_time_or_reorder_the_list(qtbot, window):
    panel = window.sessions
    window.prompt_tab.prompt.setPlainText("alpha")
    panel.new_session()
    window.prompt_tab.prompt.setPlainText("beta")
    qtbot.wait(DEBOUNCE_WAIT_MS)
    order = listed(panel)
    stamps = {s.id: s.updated_at for s in window.store.list()}
    for row in (1, 0, 1, 0):
        click_session(qtbot, panel, row)
        qtbot.wait(DEBOUNCE_WAIT_MS // 2)
    qtbot.wait(DEBOUNCE_WAIT_MS)
    assert listed(panel) == order
    assert {s.id: s.updated_at for s in window.store.list()} == stamps
    window.prompt_tab.prompt.setPlainText("beta, edited")  # a real edit still moves it to the top
    window.save_drafts()
    assert window.store.list()[0].id == window.current_session
