"""Sessions in the window: autosave of runs and drafts, restore on relaunch, history, sidebar actions."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from playground import paths
from playground.store.db import open_database
from playground.store.repository import SessionStore
from tests.common.scripted import ScriptedRunner
from tests.prompt.test_prompt_tab import type_inputs, type_text
from ui.shell.main_window import MainWindow

WORDS = [f" w{i}" for i in range(200)]


@pytest.fixture
def open_window(qtbot):
    def make(runner=None):
        window = MainWindow(runner or ScriptedRunner(WORDS[:5]), autoload=False)
        qtbot.addWidget(window)
        window.show()
        return window

    return make


def run_and_wait(qtbot, window):
    with qtbot.waitSignal(window.prompt_tab.run_finished, timeout=5000):
        window.prompt_tab.run_button.click()


def independent_store() -> SessionStore:
    """What another process (or the app after a crash) would read from disk."""
    return SessionStore(open_database())


def test_a_run_is_saved_and_everything_comes_back_after_relaunch(qtbot, open_window):
    window = open_window()
    type_inputs(qtbot, window.prompt_tab, source="Q: 1+1\nA: 2\n", prompt="Q: 3+3\nA:")
    window.params.apply({"temperature": 0.3, "max_new_tokens": 17})
    run_and_wait(qtbot, window)
    assert window.sessions.history.count() == 1
    session_id = window.current_session
    window.close()

    store = independent_store()
    (run,) = store.runs(session_id)
    assert run.status == "done" and run.inputs == {"source": "Q: 1+1\nA: 2\n", "prompt": "Q: 3+3\nA:"}
    assert run.outputs["completions"][0]["text"] == "".join(WORDS[:5])
    store.db.dispose()

    again = open_window()
    assert again.current_session == session_id
    tab = again.prompt_tab
    assert tab.source.toPlainText() == "Q: 1+1\nA: 2\n" and tab.prompt.toPlainText() == "Q: 3+3\nA:"
    assert again.params.values()["max_new_tokens"] == 17
    assert tab.output.toPlainText() == "".join(WORDS[:5])
    assert len(tab.output.tokens) == 5  # with probabilities, for hover


def test_typing_is_saved_as_a_draft_within_two_seconds_without_closing(qtbot, open_window):
    window = open_window()
    type_text(qtbot, window.prompt_tab.prompt, "unsaved idea")

    def saved() -> bool:
        store = independent_store()
        try:
            return store.draft(window.current_session).get("prompt", {}).get("prompt") == "unsaved idea"
        finally:
            store.db.dispose()

    qtbot.waitUntil(saved, timeout=2500)


def test_cancelled_and_failed_runs_are_kept_with_their_status(qtbot, open_window):
    runner = ScriptedRunner(WORDS, delay=0.01)
    window = open_window(runner)
    tab = window.prompt_tab
    type_inputs(qtbot, tab)
    tab.run_button.click()
    qtbot.waitUntil(lambda: len(tab.output.toPlainText()) > 10, timeout=5000)
    with qtbot.waitSignal(tab.run_finished, timeout=5000):
        tab.stop_button.click()
    runner.error = RuntimeError("engine exploded")
    with qtbot.waitSignal(window.bridge.failed, timeout=5000):
        tab.run_button.click()
    qtbot.waitUntil(lambda: window.sessions.history.count() == 2, timeout=3000)
    runs = window.store.runs(window.current_session)
    assert [r.status for r in runs] == ["cancelled", "failed"]
    assert runs[0].outputs["completions"][0]["text"] and "engine exploded" in runs[1].error


def test_history_reopens_a_past_run_into_the_editors(qtbot, open_window):
    window = open_window()
    tab = window.prompt_tab
    type_inputs(qtbot, tab, source="shared source\n", prompt="first prompt")
    run_and_wait(qtbot, window)
    tab.prompt.setPlainText("second prompt")
    run_and_wait(qtbot, window)
    history = window.sessions.history
    assert history.count() == 2 and "second prompt" in history.item(0).text()
    history.itemActivated.emit(history.item(1))  # the older run
    assert tab.prompt.toPlainText() == "first prompt" and tab.source.toPlainText() == "shared source\n"
    assert tab.output.toPlainText() == "".join(WORDS[:5])


def test_each_session_keeps_its_own_inputs(qtbot, open_window):
    window = open_window()
    panel = window.sessions
    first = window.current_session
    window.prompt_tab.prompt.setPlainText("alpha")
    panel.new_button.click()
    second = window.current_session
    assert second != first and window.prompt_tab.prompt.toPlainText() == ""
    window.prompt_tab.prompt.setPlainText("beta")
    window.save_drafts()
    panel.select(first)
    assert window.prompt_tab.prompt.toPlainText() == "alpha"
    panel.select(second)
    assert window.prompt_tab.prompt.toPlainText() == "beta"


def test_rename_duplicate_search_delete_and_undo(qtbot, open_window):
    window = open_window()
    panel = window.sessions
    panel.rename(window.current_session, "Capitals")
    window.prompt_tab.prompt.setPlainText("Country: Peru")
    run_and_wait(qtbot, window)
    panel.duplicate_button.click()
    assert panel.list.count() == 2 and "Capitals (copy)" in panel.list.currentItem().text()
    assert window.store.get(window.current_session).run_count == 1

    qtbot.keyClicks(panel.search, "peru")
    qtbot.waitUntil(lambda: panel.list.count() == 2, timeout=2000)
    panel.search.clear()
    qtbot.keyClicks(panel.search, "no such text")
    qtbot.waitUntil(lambda: panel.list.count() == 0, timeout=2000)
    panel.search.clear()
    qtbot.waitUntil(lambda: panel.list.count() == 2, timeout=2000)

    deleted = window.current_session
    panel.delete_button.click()
    assert panel.list.count() == 1 and window.current_session != deleted
    assert panel.undo_button.isVisible()
    qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)
    assert panel.list.count() == 2 and window.current_session == deleted
    assert not panel.undo_button.isVisible()
    assert "Could not save" not in window.statusBar().currentMessage()


def test_a_corrupt_database_does_not_stop_the_app(qtbot, open_window):
    (paths.data_dir() / "playground.db").write_bytes(b"garbage, not sqlite" * 50)
    window = open_window()
    assert "could not be opened" in window.statusBar().currentMessage()
    assert window.sessions is not None and window.sessions.list.count() == 1
    assert any(".corrupt-" in p.name for p in paths.data_dir().iterdir())


def test_the_text_parameters_hide_on_the_image_tab(qtbot, open_window):
    window = open_window()
    window.tabs.setCurrentWidget(window.image_tab)
    assert not window.params_dock.isVisible()
    window.tabs.setCurrentWidget(window.layout_tab)
    assert window.params_dock.isVisible()


def test_an_image_run_is_saved_with_its_png_by_reference(qtbot, open_window):
    import hashlib

    window = open_window()
    tab = window.image_tab
    window.tabs.setCurrentWidget(tab)
    tab.prompt.setPlainText("a blue square on a yellow background")
    tab.steps.setValue(4)
    with qtbot.waitSignal(tab.run_ended, timeout=60_000) as ended:
        tab.generate()
    run = ended.args[0]
    assert run.status == "done" and run.model_id == "demo-shapes"
    qtbot.waitUntil(lambda: len(window.store.runs(window.current_session, mode="image")) == 1, timeout=5000)
    (saved,) = window.store.runs(window.current_session, mode="image")
    (ref,) = saved.outputs["images"]
    png = (paths.data_dir() / ref["path"]).read_bytes()
    assert ref["path"].startswith("images/") and hashlib.sha256(png).hexdigest() == ref["sha256"]
