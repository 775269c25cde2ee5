"""Each tab shows only the parameters it uses, with its own defaults, and says where the values come from
(issue 16, item 8: the Prompt tab's temperature 1.2 turned the Layout preset into gibberish)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.common.scripted import ScriptedRunner
from ui.shell.main_window import MainWindow

PAGE = ["<html><body><h1>Hi</h1></body></html>"]


@pytest.fixture
def window(qtbot):
    w = MainWindow(ScriptedRunner(PAGE), autoload=False)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    return w


def click_tab(qtbot, window, tab) -> None:
    bar = window.tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(window.tabs.indexOf(tab)).center())
    assert window.tabs.currentWidget() is tab


def shown_panel(window):
    return window.params_dock.current()


def set_spin(qtbot, box, text: str) -> None:
    box.setFocus()
    box.selectAll()
    qtbot.keyClicks(box, text)
    qtbot.keyClick(box, Qt.Key.Key_Tab)


def test_each_tab_has_its_own_parameters_and_defaults(qtbot, window):
    prompt = shown_panel(window)
    assert prompt is window.params and window.params_dock.windowTitle() == "Parameters · Prompt"
    set_spin(qtbot, prompt.temperature, "1.2")
    assert prompt.values()["temperature"] == 1.2
    assert "edited" in prompt.origin.text() and prompt.labels["temperature"].font().bold()
    assert not prompt.labels["top_p"].font().bold()

    click_tab(qtbot, window, window.layout_tab)
    layout = shown_panel(window)
    assert layout is window.layout_tab.params and window.params_dock.windowTitle() == "Parameters · Layout"
    assert set(layout.values()) == {"max_new_tokens", "temperature", "top_p", "top_k", "seed"}
    assert layout.values()["temperature"] == 0.0 and layout.values()["max_new_tokens"] == 400
    assert "Layout defaults" in layout.origin.text() and layout.intro.isVisible()
    window.layout_tab.description.setPlainText("a heading")
    with qtbot.waitSignal(window.layout_tab.page_ready, timeout=10_000):
        qtbot.mouseClick(window.layout_tab.generate_button, Qt.MouseButton.LeftButton)
    request = window.bridge.runner.requests[-1]
    assert request.temperature == 0.0 and request.max_new_tokens == 400  # not the Prompt tab's 1.2

    click_tab(qtbot, window, window.sheet_tab)
    assert set(shown_panel(window).values()) == {"max_new_tokens"}
    assert shown_panel(window).labels["max_new_tokens"].text() == "Max tokens per cell"

    click_tab(qtbot, window, window.image_tab)
    assert not window.params_dock.isVisible()  # the Image tab has its own settings

    click_tab(qtbot, window, window.compare_tab)
    compare = shown_panel(window)
    assert compare is window.compare_tab.params and "n" not in compare.values()
    assert "column" in compare.intro.text()
    window.compare_tab.views.setCurrentWidget(window.compare_tab.image_grid)
    assert not window.params_dock.isVisible()  # the X/Y grid uses none of them
    window.compare_tab.views.setCurrentIndex(0)
    assert window.params_dock.isVisible()


def test_presets_runs_and_sessions_say_where_values_come_from(qtbot, window):
    tab = window.prompt_tab
    set_spin(qtbot, window.params.temperature, "1.5")
    tab.presets.activated.emit(1)  # a preset: its settings, the rest back to the defaults
    assert "preset" in window.params.origin.text()
    assert window.params.values()["temperature"] != 1.5
    tab.prompt.setPlainText("go")
    with qtbot.waitSignal(tab.run_finished, timeout=5000):
        qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    window.sessions.new_session()  # a new session starts from the tab's defaults
    assert window.params.values() == {**window.params.values(), "temperature": 0.7, "max_new_tokens": 64}
    assert "Prompt defaults" in window.params.origin.text()
    history = window.sessions
    history.select(window.store.list()[-1].id)
    assert "as last used in this session" in window.params.origin.text()
    history.history.itemActivated.emit(history.history.item(0))
    assert "from the run of" in window.params.origin.text()
    set_spin(qtbot, window.params.top_k, "5")
    qtbot.mouseClick(window.params.reset_button, Qt.MouseButton.LeftButton)
    assert window.params.values()["top_k"] == 0 and "Prompt defaults" in window.params.origin.text()


def test_every_parameter_explains_itself(window):
    panels = list(window.params_dock.panels.values())
    for panel in panels:
        for key, control in panel.controls.items():
            assert "Default in the" in control.toolTip() and len(control.toolTip()) > 40, key
    image = window.image_tab
    for control in (image.model, image.negative, image.steps, image.guidance, image.seed, image.width_box,
                    image.height_box, image.batch, image.scheduler):
        assert len(control.toolTip()) > 20, control
    grid = window.compare_tab.image_grid
    for control in (grid.model, grid.steps, grid.x_axis, grid.x_values, grid.y_axis, grid.y_values):
        assert control.toolTip(), control


def test_the_sessions_sidebar_keeps_its_width_across_tabs(qtbot, window):
    widths = set()
    for tab in (window.prompt_tab, window.image_tab, window.layout_tab, window.compare_tab, window.sheet_tab):
        click_tab(qtbot, window, tab)
        qtbot.wait(20)
        widths.add(window.sessions_dock.width())
    assert len(widths) == 1, widths
