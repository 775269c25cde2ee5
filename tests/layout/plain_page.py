"""The control for the sandbox tests: an ordinary QWebEngineView (default profile, JavaScript on, none of
Playground's Chromium flags or scripts) shows a page and quits when its title says "done" (or after 10 s).

    python -m tests.layout.plain_page PAGE.html BASE_URL

Run in a process of its own: Chromium's flags are per process, and the test process has the sandbox's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(page: Path, base_url: str) -> int:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.environ["QTWEBENGINE_DISABLE_SANDBOX"] = "1"
    os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = "--log-level=3"
    import PySide6.QtWebEngineWidgets  # noqa: F401 - before the QApplication
    from PySide6.QtCore import QTimer, QUrl
    from PySide6.QtWebEngineWidgets import QWebEngineView
    from PySide6.QtWidgets import QApplication

    app = QApplication([sys.argv[0]])
    view = QWebEngineView()
    view.resize(400, 300)
    view.show()
    view.page().titleChanged.connect(lambda title: title == "done" and QTimer.singleShot(1500, app.quit))
    QTimer.singleShot(10_000, app.quit)
    view.setHtml(page.read_text(encoding="utf-8"), QUrl(base_url))
    app.exec()
    print(view.page().title(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
