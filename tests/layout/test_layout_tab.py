"""The Layout tab in the real window: stream, render, iterate, undo, export, saved in the session."""

from __future__ import annotations

import pytest

from tests.common.scripted import ScriptedRunner
from ui.shell.main_window import MainWindow

PAGE = ["<html><body>", "\n<h1 style='color:#cc0000'>Welcome</h1>", "\n<button>Subscribe</button>",
        "\n</body></html>"]
RED_PAGE = ["<html><body>", "\n<h1 style='color:#cc0000'>Welcome</h1>",
            "\n<button style='background:#ff0000'>Subscribe</button>", "\n</body></html>"]


@pytest.fixture
def window(qtbot):
    runner = ScriptedRunner(PAGE, delay=0.05)
    w = MainWindow(runner, autoload=False)
    qtbot.addWidget(w)
    w.show()
    w.tabs.setCurrentWidget(w.layout_tab)
    return w


def red_pixels(image) -> int:
    return sum(1 for x in range(0, image.width(), 3) for y in range(0, min(image.height(), 150), 3)
               if image.pixelColor(x, y).red() > 150 and image.pixelColor(x, y).green() < 80)


def test_describe_generate_render_iterate_undo_export(qtbot, window, tmp_path):
    tab = window.layout_tab
    runner = window.bridge.runner
    tab.description.setPlainText("A large heading Welcome and a button Subscribe")
    with qtbot.waitSignal(tab.page_ready, timeout=10_000) as ready:
        tab.generate_button.click()
    assert "<button>Subscribe</button>" in ready.args[0]
    assert tab.source.toPlainText() == ready.args[0] and "valid HTML" in tab.validity.text()
    assert runner.requests[0].messages[-1]["content"].startswith("A large heading Welcome")
    assert tab.preview.wait_loaded()  # the final page rendered (it may have before this call)
    qtbot.waitUntil(lambda: red_pixels(tab.preview.grab_image()) > 10, timeout=10_000)  # rendered, not blank

    runner.tokens = RED_PAGE
    tab.instruction.setText("make the button red")
    with qtbot.waitSignal(tab.page_ready, timeout=10_000):
        tab.change_button.click()
    assert "<button>Subscribe</button>" in runner.requests[1].messages[-1]["content"]  # edits the current page
    assert "make the button red" in runner.requests[1].messages[-1]["content"]
    assert tab.version_label.text() == "version 2 of 2" and "#ff0000" in tab.source.toPlainText()

    tab.back_button.click()
    assert tab.version_label.text() == "version 1 of 2" and "#ff0000" not in tab.source.toPlainText()
    tab.forward_button.click()
    assert "#ff0000" in tab.source.toPlainText()

    out = tmp_path / "page.html"
    tab.export_html(out)
    assert out.read_text() == tab.versions.current
    assert tab.save_screenshot(tmp_path / "page.png") and (tmp_path / "page.png").stat().st_size > 1000

    runs = window.store.runs(window.current_session, mode="layout")
    assert [r.inputs["instruction"] for r in runs] == ["", "make the button red"]
    assert all(r.status == "done" and r.outputs["valid"] for r in runs)


def test_broken_output_is_repaired_and_flagged(qtbot, window):
    window.bridge.runner.tokens = ["Here you go:\n```html\n<html><body><div><h1>Hi</h1>", "<p>cut"]
    tab = window.layout_tab
    tab.description.setPlainText("anything")
    with qtbot.waitSignal(tab.page_ready, timeout=10_000) as ready:
        tab.generate_button.click()
    assert ready.args[0] == "<html><body><div><h1>Hi</h1><p>cut</div></body></html>"
    assert "not valid HTML" in tab.validity.text()


def test_stop_keeps_the_partial_page(qtbot, window):
    window.bridge.runner.tokens = PAGE * 50
    window.bridge.runner.delay = 0.05
    tab = window.layout_tab
    tab.description.setPlainText("long page")
    tab.generate_button.click()
    qtbot.waitUntil(lambda: "<h1" in tab.source.toPlainText(), timeout=10_000)
    with qtbot.waitSignal(tab.run_ended, timeout=10_000) as ended:
        tab.stop_button.click()
    assert ended.args[0].status == "cancelled" and "<h1" in tab.versions.current


def test_layout_state_survives_a_relaunch(qtbot, window):
    tab = window.layout_tab
    tab.description.setPlainText("A heading")
    with qtbot.waitSignal(tab.page_ready, timeout=10_000):
        tab.generate_button.click()
    html = tab.versions.current
    window.close()
    again = MainWindow(ScriptedRunner([]), autoload=False)
    qtbot.addWidget(again)
    assert again.layout_tab.description.toPlainText() == "A heading"
    assert again.layout_tab.versions.current == html and again.layout_tab.source.toPlainText() == html


def test_empty_description_is_refused(window):
    window.layout_tab.generate_button.click()
    assert window.layout_tab.error.isVisible() and window.bridge.runner.requests == []
