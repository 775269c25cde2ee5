"""The window works at 1024×700 and keeps its size (issue 16, item 4: it could not be narrower than 1295 px, cut
off the Compare columns' footers at 700 px high and widened itself after a Compare run)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from playground.models.registry import Registry
from playground.runtime.runner import EngineRunner
from tests.common.scripted import ScriptedRunner
from ui.shell.main_window import MainWindow

SMALL = (1024, 700)


def fully_visible(widget) -> bool:
    return widget.isVisible() and widget.visibleRegion().boundingRect().size() == widget.size()


@pytest.fixture
def small_window(qtbot):
    def make(runner):
        window = MainWindow(runner, autoload=False)
        qtbot.addWidget(window)
        window.resize(*SMALL)
        window.show()
        qtbot.waitExposed(window)
        return window

    return make


def test_every_tab_fits_1024_by_700_with_both_sidebars(qtbot, small_window):
    window = small_window(ScriptedRunner([" a"]))
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        qtbot.wait(10)
        hint = window.minimumSizeHint()
        assert hint.width() <= SMALL[0] and hint.height() <= SMALL[1], (window.tabs.tabText(index), hint)
        assert (window.width(), window.height()) == SMALL
        tab = window.tabs.currentWidget()
        assert tab.width() >= tab.minimumSizeHint().width()  # laid out, not clipped
        assert window.sessions_dock.isVisible()
        assert window.params_dock.isVisible() == (tab.params_spec is not None)  # beside the tab, when it has any
        if tab is window.prompt_tab:
            assert all(fully_visible(w) for w in (tab.run_button, tab.stop_button, tab.show_probs))
        if tab is window.layout_tab:
            assert all(fully_visible(w) for w in (tab.generate_button, tab.back_button, tab.forward_button))
        if tab is window.sheet_tab:
            assert all(fully_visible(w) for w in (tab.fill_button, tab.import_button, tab.clear_button))
        if tab is window.image_tab:
            assert all(fully_visible(w) for w in (tab.generate_button, tab.stop_button, tab.progress))


def test_a_compare_run_shows_its_footers_and_leaves_the_width_alone(qtbot, small_window, tiny_model_dir):
    info = Registry().add(tiny_model_dir)  # a long path as its id: what the status line names
    window = small_window(EngineRunner(device="cpu"))
    window.refresh_models(select=info.id)
    window.tabs.setCurrentWidget(window.compare_tab)
    tab = window.compare_tab
    tab.params.max_tokens.setValue(24)
    tab.prompt.setPlainText("The cat")
    width, minimum = window.width(), window.minimumSizeHint().width()
    with qtbot.waitSignal(tab.run_ended, timeout=60_000):
        qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    qtbot.wait(50)
    assert window.width() == width and window.minimumSizeHint().width() <= max(minimum, SMALL[0])
    assert info.id in tab.memory.text() or tab.memory.text()
    scroll = tab.columns[0].parentWidget().parentWidget().parentWidget()  # strip → viewport → scroll area
    assert scroll.verticalScrollBar().maximum() == 0  # as tall as the view: nothing below it to scroll to
    for column in tab.columns:  # side by side: scrolled to sideways (never cut off at the bottom)
        scroll.ensureWidgetVisible(column.stats)
        qtbot.wait(10)
        assert "tok/s" in column.stats.text()
        assert fully_visible(column.stats), column.stats.visibleRegion().boundingRect()


def test_a_parameters_dock_left_narrow_shows_its_fields_whole_in_a_large_window(qtbot, small_window):
    """A dock width saved at 1024 px (or dragged narrow) must not leave the fields cut off at 1280 px and up."""
    window = small_window(ScriptedRunner([" a"]))
    dock = window.params_dock
    window.resizeDocks([dock], [60], Qt.Orientation.Horizontal)
    qtbot.wait(10)
    assert dock.width() < 100
    window.resize(1400, 800)
    qtbot.waitUntil(lambda: dock.width() >= min(dock.scroll.widget().sizeHint().width(), 1400 // 5) - 2)
    assert (window.width(), window.height()) == (1400, 800)


def test_at_1024_px_the_parameters_show_whole_without_scrolling_sideways(qtbot, small_window):
    """A fifth of a 1024 px window is too narrow for labels beside the fields: they go above them, so every field
    shows whole (it used to take a sideways scroll to read the values); a wide window puts them back beside."""
    window = small_window(ScriptedRunner([" a"]))
    dock, panel = window.params_dock, window.params_dock.current()
    assert panel is not None
    qtbot.waitUntil(lambda: dock.scroll.horizontalScrollBar().maximum() == 0)
    for key in ("max_new_tokens", "temperature", "repetition_penalty", "seed"):
        dock.scroll.ensureWidgetVisible(panel.controls[key])
        qtbot.wait(10)
        assert fully_visible(panel.controls[key]) and fully_visible(panel.labels[key]), key
    assert panel.labels["temperature"].geometry().bottom() < panel.controls["temperature"].geometry().top()
    assert (window.width(), window.height()) == SMALL
    window.resize(1600, 900)
    qtbot.waitUntil(lambda: panel.labels["temperature"].geometry().right() < panel.controls["temperature"].x())
