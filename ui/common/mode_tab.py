"""What every mode's tab shares: the run / stop / validate / error flow and its place in a session.

A tab subclasses ``ModeTab``, makes its buttons with ``run_buttons`` (Run with Ctrl+Enter, Stop with Esc), calls
``set_running`` when a job starts and ends, and reports problems through ``show_error`` / ``show_failure`` (a user's
mistake in one line; a bug as "Internal error" with its traceback logged and in the tooltip). The main window talks
to every tab through the same four calls: ``draft``, ``restore``, ``show_run`` and ``shutdown``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QPushButton, QWidget

from playground.errors import ParameterError
from playground.store.records import Run
from ui.common.params_panel import PanelSpec
from ui.common.widgets import banner, plain_tip

log = logging.getLogger("playground.ui")


class ModeTab(QWidget):
    params_spec: PanelSpec | None = None  # the parameters this tab uses and its defaults (None: no panel)
    mode = ""  # the run records' mode: prompt | layout | sheet | image | compare
    run_ended = Signal(object)  # a store Run (done, cancelled or failed), for the session
    changed = Signal()  # the user edited an input: time to save a draft

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.error = banner("error")
        self._running = False
        self._run_buttons: list[QWidget] = []
        self._stop_buttons: list[QPushButton] = []
        self._pairs: list[tuple[QWidget, QPushButton]] = []  # (run, its stop)
        self._focus_after: QWidget | None = None  # the button that started the run gets focus back

    @property
    def running(self) -> bool:
        return self._running

    # -- buttons and keys --------------------------------------------------------------------------------------
    def run_buttons(self, label: str, run: Callable[[], Any], stop: Callable[[], Any],
                    run_keys_on: QWidget | None = None) -> tuple[QPushButton, QPushButton]:
        """A "<label> (Ctrl+Enter)" and a "Stop (Esc)" button; Ctrl+Enter is bound on ``run_keys_on`` (default: the
        whole tab), Esc on the whole tab."""
        run_button = QPushButton(f"{label}  (Ctrl+Enter)")
        # clicked(bool) would hand its flag to ``run``: call it with no arguments, as the shortcut does.
        run_button.clicked.connect(lambda _checked=False: run())
        stop_button = QPushButton("Stop  (Esc)")
        stop_button.setEnabled(False)
        stop_button.clicked.connect(lambda _checked=False: stop())
        self._run_buttons.append(run_button)
        self._stop_buttons.append(stop_button)
        self._pairs.append((run_button, stop_button))
        self.bind_keys(run, None, run_keys_on or self)
        self.bind_keys(None, stop, self)
        return run_button, stop_button

    def bind_keys(self, run: Callable[[], Any] | None, stop: Callable[[], Any] | None, on: QWidget) -> None:
        """Ctrl+Enter runs, Esc stops, while focus is anywhere inside ``on`` (bind each key once per area: Qt
        ignores a key that two shortcuts claim)."""
        context = Qt.ShortcutContext.WidgetWithChildrenShortcut
        if run is not None:
            for keys in ("Ctrl+Return", "Ctrl+Enter"):
                QShortcut(QKeySequence(keys), on, run, context=context)
        if stop is not None:
            QShortcut(QKeySequence(Qt.Key.Key_Escape), on, stop, context=context)

    def also_disabled_while_running(self, *buttons: QWidget) -> None:
        """More buttons that start work (e.g. Layout's "Apply change"): off while a job runs."""
        self._run_buttons.extend(buttons)

    def set_running(self, running: bool) -> None:
        self._running = running
        focused = QApplication.focusWidget()
        for b in self._stop_buttons:  # enabled before the run buttons go: focus has a place to go
            b.setEnabled(running)
        for b in self._run_buttons:
            b.setEnabled(not running)
        # A disabled button hands focus to the next widget in the chain (after Fill: the "unsure below" box, where
        # typing then changed the threshold). Focus goes to Stop while running and back to the button afterwards.
        if running and focused in self._run_buttons:
            self._focus_after = focused
            stop = next((st for run, st in self._pairs if run is focused), self._stop_buttons[0] if self._stop_buttons
                        else None)
            if stop is not None:
                stop.setFocus(Qt.FocusReason.OtherFocusReason)
        elif not running:
            back, self._focus_after = self._focus_after, None
            if back is not None and (focused is None or focused in self._stop_buttons):
                back.setFocus(Qt.FocusReason.OtherFocusReason)
        self._on_running_changed(running)

    def _on_running_changed(self, running: bool) -> None:
        """Hook: timers, status lines."""

    def valid(self, request: Any) -> bool:
        """True when ``request.validate()`` passes; else its message is shown and False returned."""
        try:
            request.validate()
        except ParameterError as exc:
            self.show_error(str(exc))
            return False
        return True

    # -- messages ----------------------------------------------------------------------------------------------
    def show_error(self, message: str, details: str = "") -> None:
        """One line the user can act on (``details`` in the tooltip)."""
        self.error.setText(message[:1].upper() + message[1:])
        self.error.setToolTip(plain_tip(details))  # a traceback holds "<module>"
        self.error.show()

    def show_failure(self, message: str, is_bug: bool) -> str:
        """Show a job's failure; a bug is logged with its traceback. Returns the first line (for the run record)."""
        first = (message.splitlines() or ["failed"])[0]
        if is_bug:
            log.error("%s run failed:\n%s", self.mode or "a", message)
            self.show_error("Internal error: " + first, details=message)
        else:
            self.show_error(message)
        return first

    def clear_error(self) -> None:
        self.error.hide()
        self.error.clear()
        self.error.setToolTip("")

    # -- sessions ----------------------------------------------------------------------------------------------
    def draft(self) -> dict[str, Any]:
        """The inputs as saved in the session's draft."""
        raise NotImplementedError

    def restore(self, draft: dict[str, Any], last_run: Run | None) -> None:
        """Open a session: its draft in the inputs, its last run's output shown."""
        raise NotImplementedError

    def show_run(self, run: Run) -> None:
        """Re-open a past run: its inputs and settings in the editors, its output shown."""
        raise NotImplementedError

    def shutdown(self) -> None:
        """Stop and free what the tab runs (its worker thread, models)."""
