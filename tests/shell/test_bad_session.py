"""A run the app cannot read (stored before imports checked types) never breaks the window: the session shows a
notice, every other session opens as usual (issue 15, item 12)."""

from __future__ import annotations

import pytest

from playground.store.db import open_database
from playground.store.records import Run
from playground.store.repository import SessionStore
from tests.common.scripted import ScriptedRunner
from ui.common.params_panel import ParamsPanel
from ui.shell.main_window import MainWindow


@pytest.fixture
def damaged_store(data_home):
    """A good session, then (most recent, so it opens first) one holding what an old import let in."""
    db = open_database()
    store = SessionStore(db)
    good = store.create("Good")
    store.add_run(good.id, Run(mode="prompt", model_id="m", inputs={"prompt": "Country: Peru"},
                               outputs={"completions": [{"text": " Lima", "tokens": []}]}))
    bad = store.create("Bad import")
    store.add_run(bad.id, Run(mode="prompt", model_id="m", inputs={"prompt": "x"},
                              outputs={"completions": ["str", 5]}))
    store.save_draft(bad.id, "prompt", {"source": "kept", "prompt": "typed", "params": {"top_p": "z", "seed": "s"}})
    db.dispose()
    yield good.id, bad.id
    db = open_database()  # the fixture's own damage is not what the teardown's re-import check is about
    SessionStore(db).remove(bad.id)
    db.dispose()


def test_a_bad_run_shows_a_notice_and_the_window_works(qtbot, damaged_store):
    good, bad = damaged_store
    window = MainWindow(ScriptedRunner([" w"]), autoload=False)  # raised in __init__ before the fix
    qtbot.addWidget(window)
    window.show()
    assert window.current_session == bad
    assert window.sessions.notice.isVisible() and "could not be shown" in window.sessions.notice.text()
    assert window.sessions.history.count() == 1  # the bad run is still listed
    assert window.prompt_tab.source.toPlainText() == "kept"  # the draft's readable fields are back
    assert window.params.values()["top_p"] == 1.0  # "z" ignored, not raised

    window.sessions.select(good)
    assert not window.sessions.notice.isVisible()
    assert window.sessions.history.item(0).text().endswith("→  Lima")
    window.sessions.select(bad)
    window.sessions._on_run_activated(window.sessions.history.item(0))  # double-click the bad run
    assert "cannot show" in window.statusBar().currentMessage()


def test_params_from_a_file_of_the_wrong_types_are_ignored(qtbot):
    panel = ParamsPanel()
    qtbot.addWidget(panel)
    panel.apply({"top_p": "z", "temperature": None, "max_new_tokens": 10**30, "stop": 5, "seed": "x", "top_k": 3})
    values = panel.values()
    assert values["top_p"] == 1.0 and values["temperature"] == 0.7 and values["max_new_tokens"] == 8192
    assert values["stop"] == () and values["seed"] is None and values["top_k"] == 3
