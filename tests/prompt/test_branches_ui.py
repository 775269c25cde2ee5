"""Branching in the Prompt tab: click a token, pick an alternative, the branch streams from there, the tree keeps
every branch as a saved run, and it all comes back with the session."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QHelpEvent, QTextCursor
from PySide6.QtWidgets import QToolTip

from tests.common.scripted import ScriptedRunner
from tests.prompt.test_prompt_tab import type_inputs
from ui.shell.main_window import MainWindow

WORDS = [f" w{i}" for i in range(6)]
# An offscreen popup menu cannot grab the keyboard; harmless.
pytestmark = pytest.mark.qt_log_ignore("does not support grabbing the keyboard")
SOURCE, PROMPT = "Q: 1+1\nA: 2\n\n", "Q: 2+2\nA:"


@pytest.fixture
def window(qtbot):
    win = MainWindow(ScriptedRunner(WORDS), autoload=False)
    qtbot.addWidget(win)
    win.show()
    return win


def token_point(output, index: int):
    """Where token ``index`` of the output is drawn (its middle), in viewport coordinates."""
    spans = output._spans
    cursor = QTextCursor(output.document())
    cursor.setPosition(spans[index].start + 1)
    return output.cursorRect(cursor).center()


def branch_at(qtbot, tab, index: int, alternative: str, greedy: bool = True):
    """Click token ``index`` and choose ``alternative`` from its menu; wait for the branch to finish."""
    tab.branches.greedy.setChecked(greedy)
    qtbot.mouseClick(tab.output.viewport(), Qt.MouseButton.LeftButton, pos=token_point(tab.output, index))
    menu = tab.branches.menu
    assert menu is not None and menu.isVisible()
    actions = [a for a in menu.actions() if a.text().startswith(repr(alternative))]
    assert len(actions) == 1, [a.text() for a in menu.actions()]
    with qtbot.waitSignal(tab.run_finished, timeout=5000):
        actions[0].trigger()
    menu.close()


def tree_texts(tab) -> list[tuple[int, str]]:
    """(depth, label) of every node in the branch tree, depth first."""
    out = []

    def walk(item, depth):
        out.append((depth, item.text(0)))
        for i in range(item.childCount()):
            walk(item.child(i), depth + 1)

    for i in range(tab.branches.tree.topLevelItemCount()):
        walk(tab.branches.tree.topLevelItem(i), 0)
    return out


def test_clicking_an_alternative_forks_and_the_tree_keeps_every_branch(qtbot, window):
    tab = window.prompt_tab
    runner = window.bridge.runner
    type_inputs(qtbot, tab, source=SOURCE, prompt=PROMPT)
    with qtbot.waitSignal(tab.run_finished, timeout=5000):
        tab.run_button.click()
    root_text = "".join(WORDS)
    assert tab.output.toPlainText() == root_text and tree_texts(tab) == [(0, root_text.strip())]

    window.params.apply({"temperature": 0.9})
    branch_at(qtbot, tab, 2, " other")
    request = runner.requests[-1]
    # the text up to the clicked token, then the alternative; the model continues from there, greedily
    assert request.source == SOURCE and request.prompt == PROMPT + " w0 w1" + " other"
    assert request.temperature == 0 and request.n == 1
    branch_text = " w0 w1 other" + root_text
    assert tab.output.toPlainText() == branch_text
    tokens = tab.output.tokens
    assert [t.index for t in tokens] == list(range(len(tokens))) and tokens[2].text == " other"
    assert [a.text for a in tokens[2].top] == [" w2", " other"]  # the replaced token's alternatives, on hover
    assert [d for d, _ in tree_texts(tab)] == [0, 1] and tree_texts(tab)[1][1].startswith("@2 ' other'")

    # a branch of the branch, with the sampling settings this time
    branch_at(qtbot, tab, 4, " other", greedy=False)
    assert runner.requests[-1].prompt == PROMPT + " w0 w1 other w0" + " other"
    assert runner.requests[-1].temperature == 0.9
    assert [d for d, _ in tree_texts(tab)] == [0, 1, 2]

    # clicking a node shows it again; branching from the root adds a sibling
    root_item = tab.branches.tree.topLevelItem(0)
    tab.branches.tree.itemClicked.emit(root_item, 0)
    assert tab.output.toPlainText() == root_text
    branch_at(qtbot, tab, 0, " other")
    assert runner.requests[-1].prompt == PROMPT + " other"
    assert [d for d, _ in tree_texts(tab)] == [0, 1, 2, 1]

    # every branch is a saved run of the session, re-openable with its tree
    qtbot.waitUntil(lambda: window.sessions.history.count() == 4, timeout=3000)
    runs = window.store.runs(window.current_session, "prompt")
    assert [bool(r.inputs.get("branch")) for r in runs] == [False, True, True, True]
    assert runs[1].outputs["completions"][0]["text"] == branch_text
    assert all(r.inputs["prompt"] == PROMPT for r in runs)
    session = window.current_session
    window.close()

    again = MainWindow(ScriptedRunner(WORDS), autoload=False)
    qtbot.addWidget(again)
    again.show()
    assert again.current_session == session
    tab = again.prompt_tab
    assert [d for d, _ in tree_texts(tab)] == [0, 1, 2, 1]  # the last run's tree, rebuilt from the session
    history = again.sessions.history
    history.itemActivated.emit(history.item(history.count() - 2))  # the first branch
    assert tab.output.toPlainText() == branch_text and tab.prompt.toPlainText() == PROMPT
    assert tab.branches.tree.currentItem().text(0).startswith("@2 ' other'")


def test_the_hover_says_click_to_branch_and_no_menu_for_a_token_without_alternatives(qtbot, window):
    tab = window.prompt_tab
    type_inputs(qtbot, tab, source=SOURCE, prompt=PROMPT)
    with qtbot.waitSignal(tab.run_finished, timeout=5000):
        tab.run_button.click()
    pos = token_point(tab.output, 1)
    hover = QHelpEvent(QEvent.Type.ToolTip, pos, tab.output.viewport().mapToGlobal(pos))
    tab.output.eventFilter(tab.output.viewport(), hover)
    qtbot.waitUntil(QToolTip.isVisible, timeout=2000)
    assert "Click to branch" in QToolTip.text()
    event = tab.output.tokens[1]
    assert tab.branches.offer(tab.output.tokens, event.__class__(**{**event.__dict__, "top": ()})) is None
    menu = tab.branches.offer(tab.output.tokens, event)
    texts = [a.text() for a in menu.actions()]
    assert texts[0].startswith("Branch at token 1") and len(texts) == 2  # the token already there is not offered
    tab.branches.deselect()  # e.g. the output now shows the scored prompt: nothing to branch from
    assert tab.branches.offer(tab.output.tokens, event) is None
