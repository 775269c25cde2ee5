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


def test_switching_sessions_leaves_no_stale_text_and_history_entries_are_two_lines(qtbot, window):
    from playground.store.records import Run

    prompt, sheet, image = window.prompt_tab, window.sheet_tab, window.image_tab
    prompt.presets.activated.emit(1)  # a preset picked: its hint shows
    assert prompt.preset_note.text()
    sheet.presets.activated.emit(1)
    assert sheet.preset_note.text()
    sheet.show_error("the sheet's error")
    image.status.setText("step 7 of 20 · 3.1 s")
    image.progress.setRange(0, 20)
    image.progress.setValue(7)
    window.store.add_run(window.current_session, Run(
        mode="layout", model_id="m", inputs={"description": "a pricing page", "instruction": "make the header blue"},
        outputs={"html": "<p>x</p>"}, status="done"))
    window.sessions.refresh_history()
    entry = window.sessions.history.item(0)
    assert entry.text().count("\n") == 1 and "change: make the header blue" in entry.text()
    assert not window.sessions.history.wordWrap()  # a narrow sidebar elides, never 3-4 lines an entry

    window.sessions.new_session()
    assert prompt.preset_note.text() == "" and sheet.preset_note.text() == ""
    assert sheet.error.isHidden() and image.status.text() == ""
    assert image.progress.value() == 0 and "7" not in image.progress.text()


def test_the_image_form_does_not_move_when_the_demo_banner_hides(qtbot, window):
    tab = window.image_tab
    window.tabs.setCurrentWidget(tab)
    tab.demo_note.show()
    qtbot.wait(20)
    top = tab.prompt.mapTo(tab, tab.prompt.rect().topLeft()).y()
    tab.demo_note.hide()
    qtbot.wait(20)
    assert tab.prompt.mapTo(tab, tab.prompt.rect().topLeft()).y() == top
