"""Bugs reach the user: an exception nobody caught (in a slot, an event handler, a Python thread) is logged with its
traceback to the data dir's log file and shown in a dialog; the app keeps running.

PySide6 hands an exception raised in a slot to ``sys.excepthook`` and carries on; the default hook only prints it
to a terminal the user never sees (issue 16: clicking "Run all" did nothing, the TypeError went to stderr).
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QApplication, QMessageBox

from playground import paths

log = logging.getLogger("playground")
LOG_FILE = "playground.log"
LOG_BYTES = 1_000_000  # per file; three files are kept


def log_path() -> Path:
    return paths.data_dir() / "logs" / LOG_FILE


def setup_logging() -> Path:
    """Send the app's warnings and errors (with tracebacks) to a rotating file in the data dir; return its path."""
    path = log_path()
    if not any(getattr(h, "baseFilename", None) == str(path) for h in log.handlers):
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=2, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    return path


class CrashReporter(QObject):
    """Installed as ``sys.excepthook`` and ``threading.excepthook``; shows one dialog at a time (a bug that repeats,
    say in a paint event, updates the open dialog's count instead of stacking dialogs)."""

    caught = Signal(str, str)  # summary, traceback: queued to the GUI thread from any thread

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.count = 0  # bugs caught since start (the self-test fails on any)
        self.dialog: QMessageBox | None = None
        self._repeats = 0
        self._previous = (sys.excepthook, threading.excepthook)
        self.caught.connect(self._on_caught, Qt.ConnectionType.QueuedConnection)

    def install(self) -> CrashReporter:
        sys.excepthook = self.excepthook
        threading.excepthook = self._thread_excepthook
        return self

    def uninstall(self) -> None:
        sys.excepthook, threading.excepthook = self._previous

    def excepthook(self, kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            self._previous[0](kind, exc, tb)
            return
        details = "".join(traceback.format_exception(kind, exc, tb))
        self.count += 1
        log.error("Unhandled exception:\n%s", details)
        summary = f"{kind.__name__}: {exc}" if str(exc) else kind.__name__
        self.caught.emit(summary, details)

    def _thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        self.excepthook(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)

    @Slot(str, str)
    def _on_caught(self, summary: str, details: str) -> None:
        if self.dialog is not None and self.dialog.isVisible():
            self._repeats += 1
            self.dialog.setInformativeText(f"{summary}\n\n(and {self._repeats} more since this message opened)")
            return
        self._repeats = 0
        parent = QApplication.activeWindow()
        box = self.dialog = QMessageBox(parent)
        box.setIcon(QMessageBox.Icon.Critical)
        box.setWindowTitle("Internal error")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setText("Something went wrong inside Playground (a bug, not something you did). The app keeps "
                    f"running; your work is saved as you go.\nThe details are in {log_path()}.")
        box.setInformativeText(summary)
        box.setDetailedText(details)
        box.setStandardButtons(QMessageBox.StandardButton.Close)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.show()  # not exec(): a dialog that blocks inside an event handler can deadlock a worker's relay


def install_exception_hook(app: QApplication) -> CrashReporter:
    """Log to the data dir and show every uncaught exception; return the reporter (its ``count`` of bugs)."""
    setup_logging()
    return CrashReporter(app).install()
