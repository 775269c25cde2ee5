"""The Inspect tab in the window: its runs and draft saved in the session, back after a relaunch, exported to
Markdown and through a JSON round trip."""

from __future__ import annotations

from playground.models.registry import Registry
from playground.store.markdown import export_markdown
from playground.store.transfer import export_dict, export_session, import_session
from tests.common.scripted import ScriptedRunner
from ui.shell.main_window import MainWindow

PROMPT = "Country: Italy\nCapital:"


def open_window(qtbot, model_id: str) -> MainWindow:
    window = MainWindow(ScriptedRunner([" x"]), autoload=False)
    qtbot.addWidget(window)
    window.show()
    window.refresh_models(select=model_id, include_hf_cache=False)
    return window


def test_inspect_and_probe_runs_and_the_draft_come_back_after_relaunch(qtbot, tiny_model_dir, tmp_path):
    model_id = Registry().add(tiny_model_dir).id
    window = open_window(qtbot, model_id)
    tab = window.inspect_tab
    window.tabs.setCurrentWidget(tab)
    assert not window.params_dock.isVisible()  # sampling parameters mean nothing here
    tab.prompt.setPlainText(PROMPT)
    with qtbot.waitSignal(tab.run_ended, timeout=30000) as done:
        tab.run_button.click()
    assert done.args[0].status == "done" and done.args[0].model_id == model_id
    tab.probe.template.setText("The {x} was a")
    tab.probe.values.setText("cat, dog")
    tab.probe.continuations.setText(" big, small")
    with qtbot.waitSignal(tab.run_ended, timeout=30000):
        tab.probe.run_button.click()
    qtbot.waitUntil(lambda: window.sessions.history.count() == 2, timeout=3000)
    tab.completion.setPlainText(" Rome")  # typed after the last run: only in the draft
    window.save_drafts()
    session = window.current_session
    runs = window.store.runs(session, "inspect")
    assert [r.inputs["kind"] for r in runs] == ["inspect", "probe"]

    markdown = export_markdown(window.store, session)
    assert ". Inspection · " in markdown and "Country: Italy" in markdown and "- layer 2:" in markdown
    assert ". Probe · " in markdown and "| cat | `' big'` |" in markdown
    copy = import_session(window.store, export_session(window.store, session, tmp_path / "s.json"))
    assert export_dict(window.store, copy.id)["runs"] == export_dict(window.store, session)["runs"]
    window.sessions.select(session)
    window.close()

    again = open_window(qtbot, model_id)
    assert again.current_session == session
    tab = again.inspect_tab
    assert tab.prompt.toPlainText() == PROMPT and tab.completion.toPlainText() == " Rome"
    assert tab.probe.values.text() == "cat, dog"
    # the session's last inspect-mode run (the probe) is shown; the inspection re-opens from the history
    assert tab.probe.table.rowCount() == 2
    history = again.sessions.history
    items = [history.item(i) for i in range(history.count())]
    inspection = next(i for i in items if "Country: Italy" in i.text())
    with qtbot.waitSignal(tab.run_ended, timeout=30000):
        history.itemActivated.emit(inspection)  # recomputed: attention is not stored
    assert again.tabs.currentWidget() is tab and tab.inspection is not None
    assert "".join(tab.inspection.tokens) == PROMPT
    again.close()
