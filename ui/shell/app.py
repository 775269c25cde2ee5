"""Entry point of the desktop app: the window is on screen before torch is imported."""

from __future__ import annotations

import os
import sys

from ui.shell.qt_env import no_display, qt_environment


def run_app(device: str | None = None, dtype: str | None = None, argv: list[str] | None = None) -> int:
    """Open the main window on the embedded model; return the exit code."""
    qt_environment()
    if no_display():
        print("error: no display found (DISPLAY is unset); run it on a desktop, under Xvfb, or use the "
              "headless commands: playground --help", file=sys.stderr)
        return 1
    import PySide6.QtWebEngineWidgets  # noqa: F401 - must be loaded before the QApplication exists
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from playground import paths
    from playground.runtime.runner import EngineRunner
    from ui.shell.crash import install_exception_hook
    from ui.shell.main_window import MainWindow
    from ui.shell.menus import restore_theme

    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("Playground")
    app.setOrganizationName("Playground")
    install_exception_hook(app)  # a bug in a slot is shown and logged, not only printed to a terminal
    restore_theme()  # light, dark or the system's, as chosen last time
    icon = paths.assets_dir() / "icons" / "playground.svg"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    window = MainWindow(EngineRunner(device=device, dtype=dtype))
    window.show()
    if os.environ.get("PLAYGROUND_STARTUP_PROBE"):
        _probe_startup(app)
    return app.exec()


def _probe_startup(app: object) -> None:
    """For bench/ui_responsiveness.py: report when the window has been shown and painted, then quit."""
    import time

    from PySide6.QtCore import QTimer

    def report() -> None:
        # Seconds since this process was created (the kernel's start time, so interpreter start-up counts).
        with open("/proc/self/stat", encoding="ascii") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        boot = time.clock_gettime(time.CLOCK_BOOTTIME)
        elapsed = boot - start_ticks / os.sysconf("SC_CLK_TCK")
        print(f"window shown after {elapsed:.3f} s", file=sys.stderr, flush=True)
        app.quit()

    QTimer.singleShot(0, report)


def main(argv: list[str] | None = None) -> int:
    """The ``playground`` console command: subcommands run headless, no subcommand opens the window."""
    args = sys.argv[1:] if argv is None else argv
    if "--self-test" in args:
        from ui.shell.self_test import main as self_test

        return self_test([a for a in args if a != "--self-test"])
    from playground.cli.main import main as cli_main

    return cli_main(argv, open_window=run_app)


if __name__ == "__main__":
    sys.exit(main())
