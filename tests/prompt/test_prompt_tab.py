"""Drive the real window offscreen: type, run, watch tokens stream, stop, see probabilities and errors."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QToolTip

from playground.domain.text import FinishReason
from playground.errors import ContextOverflow
from playground.models.registry import Registry
from playground.runtime.runner import EngineRunner
from tests.common.scripted import ScriptedRunner
from ui.shell.main_window import MainWindow

WORDS = [f" word{i}" for i in range(300)]


@pytest.fixture
def make_window(qtbot):
    def make(runner, autoload=False):
        window = MainWindow(runner, autoload=autoload)
        qtbot.addWidget(window)
        with qtbot.waitActive(window):
            window.show()
            window.activateWindow()
        return window

    return make


def type_text(qtbot, editor, text):
    """Type like a user: characters, with Return for each newline."""
    for i, line in enumerate(text.split("\n")):
        if i:
            qtbot.keyClick(editor, Qt.Key.Key_Return)
        if line:
            qtbot.keyClicks(editor, line)


def type_inputs(qtbot, tab, source="Q: 1+1\nA: 2\n\n", prompt="Q: 2+2\nA:"):
    type_text(qtbot, tab.source, source)
    type_text(qtbot, tab.prompt, prompt)


def test_run_streams_tokens_and_stop_keeps_the_partial_text(qtbot, make_window):
    runner = ScriptedRunner(WORDS, delay=0.01)
    window = make_window(runner)
    tab = window.prompt_tab
    type_inputs(qtbot, tab)
    tab.prompt.setFocus()
    qtbot.keyClick(tab.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert tab.error.text() == "" and tab.stop_button.isEnabled() and not tab.run_button.isEnabled()
    qtbot.waitUntil(lambda: len(tab.output.toPlainText()) > 30, timeout=5000)
    assert tab.output.toPlainText().startswith(" word0 word1")
    with qtbot.waitSignal(tab.run_finished, timeout=5000) as blocker:
        qtbot.keyClick(tab.prompt, Qt.Key.Key_Escape)
    result = blocker.args[0]
    assert result.first.finish_reason == FinishReason.CANCELLED
    shown = tab.output.toPlainText()
    assert shown == result.first.text and 0 < len(result.first.tokens) < len(WORDS)
    assert "cancelled" in tab.stats.text()
    assert tab.run_button.isEnabled() and not tab.stop_button.isEnabled()
    # The request was a snapshot of the editors, source then prompt.
    assert runner.requests[0].source == "Q: 1+1\nA: 2\n\n" and runner.requests[0].prompt == "Q: 2+2\nA:"


def test_probability_toggle_colours_tokens_and_hover_shows_alternatives(qtbot, make_window):
    window = make_window(ScriptedRunner(WORDS[:6]))
    tab = window.prompt_tab
    type_inputs(qtbot, tab)
    with qtbot.waitSignal(tab.run_finished, timeout=5000):
        tab.run_button.click()
    assert tab.output.background_at(1).alpha() == 0  # plain until asked
    tab.show_probs.click()
    likely, unlikely = tab.output.background_at(1), tab.output.background_at(len(" word0") + 1)
    assert likely.alpha() > 0 and unlikely.alpha() > 0 and likely != unlikely
    assert likely.greenF() > likely.redF() and unlikely.redF() > unlikely.greenF()

    rect = tab.output.cursorRect(tab.output.textCursor())
    cursor = tab.output.textCursor()
    cursor.setPosition(3)
    rect = tab.output.cursorRect(cursor)
    pos = QPoint(rect.x(), rect.center().y())
    event = QHelpEvent(QEvent.Type.ToolTip, pos, tab.output.viewport().mapToGlobal(pos))
    tab.output.eventFilter(tab.output.viewport(), event)
    qtbot.waitUntil(QToolTip.isVisible, timeout=2000)
    assert "word0" in QToolTip.text() and "90.0%" in QToolTip.text() and "5.0%" in QToolTip.text()
    tab.show_probs.click()
    assert tab.output.background_at(1).alpha() == 0


def test_known_errors_are_shown_and_the_app_keeps_working(qtbot, make_window):
    runner = ScriptedRunner(WORDS[:3], error=ContextOverflow("The prompt is 900 tokens but the model reads 512"))
    window = make_window(runner)
    tab = window.prompt_tab
    type_inputs(qtbot, tab)
    with qtbot.waitSignal(window.bridge.failed, timeout=5000):
        tab.run_button.click()
    qtbot.waitUntil(tab.error.isVisible, timeout=2000)
    assert "900 tokens" in tab.error.text()
    assert "900 tokens" in window.statusBar().currentMessage()
    runner.error = None
    with qtbot.waitSignal(tab.run_finished, timeout=5000):
        tab.run_button.click()
    assert not tab.error.isVisible() and tab.output.toPlainText() == "".join(WORDS[:3])


def test_bugs_are_reported_as_internal_errors(qtbot, make_window, capsys):
    window = make_window(ScriptedRunner([], error=RuntimeError("boom")))
    tab = window.prompt_tab
    type_inputs(qtbot, tab)
    with qtbot.waitSignal(window.bridge.failed, timeout=5000):
        tab.run_button.click()
    qtbot.waitUntil(tab.error.isVisible, timeout=2000)
    assert tab.error.text().startswith("Internal error: RuntimeError: boom")
    assert "Traceback" in tab.error.toolTip()


def test_empty_input_is_refused_with_a_message(qtbot, make_window):
    runner = ScriptedRunner(WORDS)
    window = make_window(runner)
    window.prompt_tab.run_button.click()
    assert window.prompt_tab.error.isVisible() and "Type a source text" in window.prompt_tab.error.text()
    assert runner.requests == []


def test_presets_fill_the_editors_and_parameters(qtbot, make_window):
    window = make_window(ScriptedRunner([]))
    tab = window.prompt_tab
    names = [tab.presets.itemText(i) for i in range(1, tab.presets.count())]
    index = next(i for i, n in enumerate(names, start=1) if "capital" in n.lower())
    tab.presets.activated.emit(index)
    assert "Capital: Paris" in tab.source.toPlainText()
    assert tab.prompt.toPlainText().endswith("Capital:")
    assert window.params.values()["temperature"] == 0 and window.params.values()["stop"] == ("\n",)


def test_status_bar_shows_the_loaded_model(qtbot, make_window):
    window = make_window(ScriptedRunner([]), autoload=True)
    qtbot.waitUntil(lambda: "smollm2" in window.model_label.text(), timeout=5000)
    assert "cpu" in window.device_label.text()
    assert re.fullmatch(r"memory: [0-9.]+ (MB|GB)", window.memory_label.text())


def test_real_engine_on_a_tiny_model(qtbot, make_window, tiny_model_dir):
    info = Registry().add(tiny_model_dir)
    window = make_window(EngineRunner(device="cpu"))
    window.refresh_models(select=info.id)
    assert window.current_model() == info.id
    tab = window.prompt_tab
    window.params.apply({"temperature": 0, "max_new_tokens": 12})
    type_inputs(qtbot, tab, source="", prompt="hello")
    with qtbot.waitSignal(tab.run_finished, timeout=60000) as blocker:
        tab.run_button.click()
    result = blocker.args[0]
    assert result.model == info.id
    assert tab.output.toPlainText() == result.first.text
    assert [t.token_id for t in tab.output.tokens] == [t.token_id for t in result.first.tokens]
    assert "tok/s" in window.speed_label.text()


def test_window_appears_before_torch_is_imported():
    code = (
        "import os, sys; os.environ['QT_QPA_PLATFORM']='offscreen'\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from playground.runtime.runner import EngineRunner\n"
        "from ui.shell.main_window import MainWindow\n"
        "w = MainWindow(EngineRunner(), autoload=False); w.show(); app.processEvents()\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
        "w.close()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_status_bar_says_which_path_and_precision_a_model_runs_on(qtbot, make_window, tmp_path):
    """A model on the fused fast path at int8: the status bar shows the precision and the path, not just "cpu"."""
    from playground.engine.text import set_default_precision
    from tests.tiny import build_tiny_llama

    info = Registry().add(build_tiny_llama(tmp_path / "m64", hidden_size=64, intermediate_size=128))
    set_default_precision("int8")
    window = make_window(EngineRunner(device="cpu"))
    with qtbot.waitSignal(window.bridge.loaded, timeout=60000):
        window.bridge.load(info.id)
    assert "(int8, fused)" in window.device_label.text()
    assert "kernels" in window.device_label.toolTip()


def test_the_first_token_is_painted_at_once_and_the_rest_in_batches(qtbot, make_window):
    """Repaints compete with decode for the cores (ui/common/streaming.py), so tokens are painted in batches, but
    the first of each run at once: it is on screen as soon as it arrives, the next waits for the batch."""
    from playground.domain.text import TokenEvent

    window = make_window(ScriptedRunner(WORDS[:1]))
    tab = window.prompt_tab
    for run in range(2):
        tab.set_running(True)
        tab._on_engine_token(TokenEvent(0, 0, " first", 0, -0.1, ()))
        assert tab.output.toPlainText().endswith(" first"), run  # painted without waiting for the timer
        tab._on_engine_token(TokenEvent(0, 1, " second", 1, -0.1, ()))
        assert not tab.output.toPlainText().endswith(" second")
        qtbot.waitUntil(lambda: tab.output.toPlainText().endswith(" second"), timeout=2000)  # the next batch
        tab.set_running(False)


def test_a_model_that_fails_to_load_leaves_the_status_bar_truthful(qtbot, make_window, tiny_model_dir, tmp_path):
    """The loaded model is freed before the next one loads: when that load fails (here a GGUF without its weights),
    the status bar had kept naming the model before it. It now says nothing is loaded, beside the reason; the
    first model, picked again, runs."""
    from tests.gguf_files import tiny_model, write_gguf

    good = Registry().add(tiny_model_dir)
    broken = Registry().add(write_gguf(tiny_model("qwen2"), tmp_path / "broken.gguf", drop=("model.",)))
    window = make_window(EngineRunner(device="cpu"))
    tab = window.prompt_tab
    window.params.apply({"temperature": 0, "max_new_tokens": 3})
    type_inputs(qtbot, tab, source="", prompt="hello")
    for model_id, ends in ((good.id, tab.run_finished), (broken.id, window.bridge.failed), (good.id, tab.run_finished)):
        window.refresh_models(select=model_id)
        with qtbot.waitSignal(ends, timeout=120000):
            tab.run_button.click()
        if model_id == broken.id:
            assert window.model_label.text() == "model: not loaded"
            assert "holds no weights" in window.statusBar().currentMessage()
        else:
            assert good.id in window.model_label.text()
