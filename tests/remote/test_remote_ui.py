"""The app with remote models, real widgets offscreen: the Endpoints dialog (test connection off the GUI thread,
key in a password field), remote models in the pickers, the Prompt tab streaming from our own server with
probabilities, "not provided by this server" where a server sends none, sheet and compare tabs."""

from __future__ import annotations

import stat

import pytest
from PySide6.QtWidgets import QLineEdit

from playground import paths
from playground.models.endpoints import EndpointStore
from playground.runtime.runner import EngineRunner
from tests.remote.conftest import add_endpoint
from tests.remote.peers import Peer, completion_chunk
from tests.sheet.conftest import capitals
from ui.common.params_panel import ParamsPanel
from ui.common.token_view import NO_PROBABILITY, NOT_PROVIDED, alternatives_html
from ui.shell.main_window import MainWindow

PROMPT = "Country: France\nCapital:"


@pytest.fixture
def window(qtbot):
    made = []

    def make() -> MainWindow:
        w = MainWindow(EngineRunner(), autoload=False)
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def test_endpoints_dialog_tests_saves_and_lists_remote_models(qtbot, window, served) -> None:
    w = window()
    dialog = w.open_endpoints()
    assert dialog.key.echoMode() == QLineEdit.EchoMode.Password
    dialog.name.setText("ours")
    dialog.url.setText(served.url.removesuffix("/v1"))  # /v1 is added
    with qtbot.waitSignal(dialog.probe.probed, timeout=10_000):
        dialog.test_button.click()
    assert dialog.test_button.isEnabled()  # the GUI thread never waited
    qtbot.waitUntil(lambda: dialog.result.text().startswith("Connected: 1 model"), timeout=5000)
    assert dialog.model.currentText() == served.model_id
    dialog.key.setText("sk-ui-secret-42")
    with qtbot.waitSignal(w.remote_models.listed, timeout=10_000):
        assert dialog.save()
    saved = EndpointStore().get("ours")
    assert saved.base_url == served.url and saved.model == served.model_id and saved.key_store == "file"
    assert stat.S_IMODE((paths.data_dir() / "secrets" / "ours.key").stat().st_mode) == 0o600
    assert "sk-ui-secret-42" not in (paths.data_dir() / "endpoints.json").read_text()
    assert w.model_picker.findData(f"remote:ours/{served.model_id}") >= 0
    assert f"remote:ours/{served.model_id}" in w.compare_tab._model_choices
    dialog.remove_current()
    assert EndpointStore().list() == [] and not (paths.data_dir() / "secrets" / "ours.key").exists()


def test_a_wrong_url_is_one_line_in_the_dialog(qtbot, window) -> None:
    dialog = window().open_endpoints()
    dialog.name.setText("nowhere")
    dialog.url.setText("http://127.0.0.1:9/v1")
    with qtbot.waitSignal(dialog.probe.probed, timeout=15_000):
        dialog.test_connection()
    assert dialog.error.isVisible() and "cannot connect" in dialog.error.text()
    dialog.url.setText("not a url")
    assert not dialog.save() and "not an http(s) URL" in dialog.error.text()


def test_prompt_tab_streams_from_a_remote_model_with_probabilities(qtbot, window, remote_model_id) -> None:
    w = window()
    w.refresh_models(select=remote_model_id)
    assert w.current_model() == remote_model_id
    tab = w.prompt_tab
    tab.prompt.setPlainText(PROMPT)
    w.params.apply({"max_new_tokens": 6, "temperature": 0.0})
    tab.show_probs.setChecked(True)
    with qtbot.waitSignal(tab.run_finished, timeout=20_000) as blocker:
        tab.run()
    result = blocker.args[0]
    assert result.model == remote_model_id and len(result.first.tokens) == 6
    tokens = tab.output.tokens
    assert [t.logprob for t in tokens] == [t.logprob for t in result.first.tokens]
    assert "%" in alternatives_html(tokens[0]) and NOT_PROVIDED not in alternatives_html(tokens[0])
    assert "remote (ours)" in w.device_label.text()


def test_a_server_without_logprobs_shows_not_provided(qtbot, window) -> None:
    def plain(handler, body) -> None:  # noqa: ANN001
        handler.start_sse()
        for piece in (" Paris", "."):
            handler.sse(completion_chunk(piece))
        handler.sse(completion_chunk("", finish="stop"))
        handler.sse("[DONE]")

    with Peer({("GET", "/v1/models"): lambda h, b: h.send_json(200, {"data": [{"id": "tgi"}]}),
               ("POST", "/v1/completions"): plain}) as peer:
        model = add_endpoint("tgi", peer.url, "tgi")
        w = window()
        w.refresh_models(select=model)
        tab = w.prompt_tab
        tab.prompt.setPlainText("Capital of France:")
        tab.show_probs.setChecked(True)
        with qtbot.waitSignal(tab.run_finished, timeout=20_000):
            tab.run()
    assert tab.output.toPlainText() == " Paris."
    token = tab.output.tokens[0]
    assert token.logprob is None
    assert NOT_PROVIDED in alternatives_html(token)
    assert tab.output.background_at(1) == NO_PROBABILITY  # grey, not a made-up colour


def test_sheet_tab_fills_with_a_remote_model(qtbot, remote_model_id) -> None:
    from ui.sheet.tab import SheetTab

    params = ParamsPanel()
    params.max_tokens.setValue(4)
    tab = SheetTab(params, lambda: remote_model_id)
    qtbot.addWidget(tab)
    try:
        tab.set_sheet(capitals(empty=2))
        with qtbot.waitSignal(tab.fill_finished, timeout=30_000) as blocker:
            tab.fill()
        result = blocker.args[0]
        assert result.model == remote_model_id and not result.cancelled
        assert all(a is not None and a.confidence is not None for a in result.answers)
    finally:
        tab.shutdown()


def test_sheet_cell_without_confidence_says_so() -> None:
    from playground.domain.sheet import AnswerToken, CellAnswer
    from ui.sheet.table_model import answer_tooltip, is_unsure

    answer = CellAnswer(0, 1, 1, "Paris", "Paris", None, (AnswerToken(" Paris", None, ()),), ())
    text = answer_tooltip(answer, 0.5)
    assert "confidence <b>—</b>" in text and NOT_PROVIDED in text
    assert not is_unsure(answer, 0.5)


def test_compare_tab_runs_remote_columns(qtbot, remote_model_id, long_tiny_dir) -> None:
    from ui.compare.tab import CompareTab

    params = ParamsPanel()
    params.max_tokens.setValue(5)
    params.apply({"temperature": 0.0})
    tab = CompareTab(params, lambda: remote_model_id, budget_bytes=2**30)
    qtbot.addWidget(tab)
    try:
        tab.prompt.setPlainText(PROMPT)
        tab.set_columns([{}, {"model": remote_model_id, "seed": 2, "temperature": 1.0}, {"model": str(long_tiny_dir)}])
        with qtbot.waitSignal(tab.run_ended, timeout=30_000) as blocker:
            tab.run_all()
        run = blocker.args[0]
        assert run.status == "done"
        assert [c["model"] for c in run.outputs["columns"]] == [remote_model_id, remote_model_id, str(long_tiny_dir)]
        assert tab.columns[0].text() == tab.columns[2].text()  # remote greedy == local greedy, same weights
        assert "mean log p" in tab.columns[0].stats.text()
    finally:
        tab.shutdown()
