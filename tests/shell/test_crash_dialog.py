"""A bug in a slot reaches the user as a dialog and the log file, never only stderr (issue 16, item 1)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from tests.common.scripted import ScriptedRunner
from ui.shell.crash import install_exception_hook, log_path
from ui.shell.main_window import MainWindow


@pytest.fixture
def reporter(qapp):
    hook = install_exception_hook(qapp)
    yield hook
    hook.uninstall()
    if hook.dialog is not None:
        hook.dialog.close()


def open_dialogs() -> list[QMessageBox]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]


@pytest.mark.qt_no_exception_capture  # the app's own hook is what is tested
def test_an_exception_in_a_slot_is_shown_and_logged_and_the_app_goes_on(qtbot, reporter):
    window = MainWindow(ScriptedRunner([" ok"]), autoload=False)
    qtbot.addWidget(window)
    window.show()
    tab = window.prompt_tab
    tab.prompt.setPlainText("hello")

    def broken() -> dict:
        raise RuntimeError("the parameters panel broke")

    real_values = window.params.values
    window.params.values = broken  # a bug behind the Run button
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(open_dialogs()), timeout=3000)
    (dialog,) = open_dialogs()
    assert "RuntimeError: the parameters panel broke" in dialog.informativeText()
    assert "Traceback" in dialog.detailedText() and "broken" in dialog.detailedText()
    assert reporter.count == 1
    logged = log_path().read_text(encoding="utf-8")
    assert "the parameters panel broke" in logged and "Traceback" in logged

    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)  # again: one dialog, counting
    qtbot.waitUntil(lambda: "1 more" in dialog.informativeText(), timeout=3000)
    assert len(open_dialogs()) == 1

    window.params.values = real_values  # the window still works
    with qtbot.waitSignal(tab.run_finished, timeout=5000):
        qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.output.toPlainText() == " ok"


@pytest.mark.qt_no_exception_capture
def test_an_exception_in_a_python_thread_is_shown_too(qtbot, reporter):
    import threading

    def work() -> None:
        raise ValueError("a background thread failed")

    thread = threading.Thread(target=work, name="helper")
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: bool(open_dialogs()), timeout=3000)
    assert "ValueError: a background thread failed" in open_dialogs()[0].informativeText()
