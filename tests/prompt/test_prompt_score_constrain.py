"""The Prompt tab's "Score prompt" and "Constrain output", on the real engine with a tiny model."""

from __future__ import annotations

import json
import os
import re

import pytest

from playground.engine.score import score
from playground.engine.text import load_text_model
from playground.models.registry import Registry
from playground.runtime.runner import EngineRunner
from ui.common.token_view import probability_colour
from ui.shell.main_window import MainWindow

SHOTS = os.environ.get("PLAYGROUND_SCREENSHOTS")  # a folder: save what the tab looks like


@pytest.fixture
def window(qtbot, tiny_model_dir):
    info = Registry().add(tiny_model_dir)
    window = MainWindow(EngineRunner(device="cpu"), autoload=False)
    qtbot.addWidget(window)
    window.show()
    window.refresh_models(select=info.id)
    window.resize(1100, 760)
    return window


def test_score_shows_the_prompts_own_probabilities_coloured(qtbot, window, tiny_model_dir) -> None:
    tab = window.prompt_tab
    tab.source.setPlainText("Q: 1+1\nA: 2\n\n")
    tab.prompt.setPlainText("Q: 2+2\nA: 4")
    tab.show_probs.setChecked(False)
    tab.score_button.click()
    qtbot.waitUntil(lambda: tab.stats.text().startswith("prompt scored"), timeout=60000)
    text = "Q: 1+1\nA: 2\n\nQ: 2+2\nA: 4"
    assert tab.output.toPlainText() == text
    local = score(load_text_model("t", tiny_model_dir, device="cpu", dtype="float32"), text, top_logprobs=5)
    shown = tab.output.tokens
    assert [t.text for t in shown] == [t.text for t in local.tokens]
    assert [t.logprob for t in shown[1:]] == pytest.approx([t.logprob for t in local.tokens[1:]], abs=1e-5)
    assert tab.show_probs.isChecked()  # coloured like the output
    at = len("Q: 1+1\nA: 2\n\nQ: 2") + 1  # inside a token past the first
    token = tab.output.token_at(at)
    import math

    assert tab.output.background_at(at) == probability_colour(math.exp(token.logprob))
    assert "perplexity" in tab.stats.text()
    assert tab.run_button.isEnabled()
    if SHOTS:
        window.grab().save(os.path.join(SHOTS, "prompt_score.png"))


def test_constrain_output_to_a_regex_choices_and_a_schema(qtbot, window) -> None:
    tab = window.prompt_tab
    window.params.apply({"temperature": 1.0, "max_new_tokens": 60, "seed": 3})
    tab.prompt.setPlainText("Answer:")
    cases = [("Regex", "[0-9]{2,3}", lambda t: re.fullmatch("[0-9]{2,3}", t)),
             ("One of (choices)", "red, green, blue", lambda t: t in ("red", "green", "blue")),
             ("JSON schema", '{"type": "object", "properties": {"n": {"type": "integer", "maximum": 99}}, '
                             '"required": ["n"], "additionalProperties": false}',
              lambda t: isinstance(json.loads(t)["n"], int))]
    for label, spec, ok in cases:
        tab.constrain_kind.setCurrentIndex(tab.constrain_kind.findText(label))
        assert tab.constrain_text.isEnabled() and tab.constrain_text.placeholderText().startswith("e.g.")
        tab.constrain_text.setText(spec)
        with qtbot.waitSignal(tab.run_finished, timeout=60000) as blocker:
            tab.run_button.click()
        text = blocker.args[0].first.text
        assert ok(text), (label, text)
        assert tab.output.toPlainText() == text
    if SHOTS:
        window.grab().save(os.path.join(SHOTS, "prompt_constrain.png"))
    # What is typed travels with the session's draft.
    draft = tab.draft()
    tab.constrain_kind.setCurrentIndex(0)
    tab.restore(draft, None)
    assert tab.constrain_kind.currentText() == "JSON schema" and '"n"' in tab.constrain_text.text()


def test_a_malformed_constraint_is_said_before_running(qtbot, window) -> None:
    tab = window.prompt_tab
    tab.prompt.setPlainText("x")
    tab.constrain_kind.setCurrentIndex(tab.constrain_kind.findText("JSON schema"))
    tab.constrain_text.setText("{not json")
    tab.run_button.click()
    assert "not valid JSON" in tab.error.text() and not tab.running
    tab.constrain_kind.setCurrentIndex(tab.constrain_kind.findText("Regex"))
    tab.constrain_text.setText("[0-9")
    with qtbot.waitSignal(tab.run_ended, timeout=60000):
        tab.run_button.click()
    qtbot.waitUntil(lambda: "regex" in tab.error.text().lower(), timeout=10000)


def test_the_penalties_are_in_the_parameters_panel(window) -> None:
    params = window.params
    assert "presence" in params.presence_penalty.toolTip().lower()
    assert "once per time" in params.frequency_penalty.toolTip()
    params.apply({"presence_penalty": 0.5, "frequency_penalty": -1.0})
    request = window.prompt_tab.request()
    assert (request.presence_penalty, request.frequency_penalty) == (0.5, -1.0)
