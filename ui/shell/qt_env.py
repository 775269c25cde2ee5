"""The process environment Qt needs before it starts (WebEngine as root, quiet Chromium, a display)."""

from __future__ import annotations

import os
import sys

# Always on, whatever else the user passes: QtWebEngine only ever shows untrusted model-written pages here.
# WebRTC may use no UDP unless proxied (and nothing is): no STUN/TURN datagram leaves, even from a page that got
# hold of RTCPeerConnection past ui/common/sandbox_script.py. No QUIC either (WebTransport, HTTP/3).
SANDBOX_FLAGS = ("--force-webrtc-ip-handling-policy=disable_non_proxied_udp", "--disable-quic")


def qt_environment() -> None:
    """Set what QtWebEngine reads when it starts (before the QApplication exists)."""
    # QtWebEngine refuses to start as root without this; harmless otherwise.
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
    # Chromium's own logging (dbus, GPU probing) is noise in a user's terminal.
    flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "--log-level=3").split()
    os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = " ".join(flags + [f for f in SANDBOX_FLAGS if f not in flags])


def no_display() -> bool:
    """True on Linux with no X11/Wayland display and no explicit Qt platform: Qt would abort."""
    return (sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"))
