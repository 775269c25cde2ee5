"""The process environment Qt needs before it starts (WebEngine as root, quiet Chromium, a display)."""

from __future__ import annotations

import os
import sys


def qt_environment() -> None:
    # QtWebEngine refuses to start as root without this; harmless otherwise.
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
    # Chromium's own logging (dbus, GPU probing) is noise in a user's terminal.
    os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--log-level=3")


def no_display() -> bool:
    """True on Linux with no X11/Wayland display and no explicit Qt platform: Qt would abort."""
    return (sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"))
