"""A sandboxed preview for untrusted, model-written HTML.

Nothing leaves the page: every request except inline ``data:`` URLs is blocked by an interceptor (``file:``
included), navigation away from the page (and any frame's) is refused, JavaScript is off unless the user turns it
on, and an off-the-record profile keeps no cookies, cache or storage. What no interceptor sees is closed too:
``<link rel=preconnect>`` (a socket opened ahead of any request, even with scripts off) never becomes a link
element, and with scripts on ``sandbox_script`` takes WebRTC, WebSocket, beacons and service workers away from
every frame before the page runs, while Chromium's WebRTC policy keeps UDP shut for the process (``qt_env``).
"""

from __future__ import annotations

import re
import time

import shiboken6
from PySide6.QtCore import QEventLoop, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QImage
from PySide6.QtWebEngineCore import (
    QWebEnginePage,
    QWebEngineProfile,
    QWebEngineSettings,
    QWebEngineUrlRequestInfo,
    QWebEngineUrlRequestInterceptor,
)
from PySide6.QtWebEngineWidgets import QWebEngineView
from PySide6.QtWidgets import QVBoxLayout, QWidget

from ui.common.sandbox_script import guard_script

ALLOWED_SCHEMES = frozenset({"data"})
LINK_TAG = re.compile(r"<(link)", re.IGNORECASE)
MAX_HTML_CHARS = 1_500_000  # setHtml goes through a data: URL, which Chromium caps at 2 MB


def neutralise_links(html: str) -> str:
    """``html`` with every ``<link`` tag renamed ``<x-link``: Chromium acts on ``rel=preconnect`` / ``dns-prefetch``
    before (and without) any request the interceptor could block. External stylesheets never load here anyway."""
    return LINK_TAG.sub(r"<x-\1", html)


class BlockingInterceptor(QWebEngineUrlRequestInterceptor):
    """Lets only inline data: URLs through; remembers what it blocked (the tests read it)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked: list[str] = []

    def interceptRequest(self, info: QWebEngineUrlRequestInfo) -> None:  # noqa: N802 - Qt override
        url = info.requestUrl()
        if url.scheme() not in ALLOWED_SCHEMES:
            info.block(True)
            self.blocked.append(url.toString()[:300])


class SandboxPage(QWebEnginePage):
    """Accepts only the navigation ``show_html`` starts; links, forms, refreshes and frames elsewhere are refused."""

    def __init__(self, profile: QWebEngineProfile, parent: QWidget) -> None:
        super().__init__(profile, parent)
        self.expect_load = False
        self.refused: list[str] = []

    def acceptNavigationRequest(self, url: QUrl | str, nav_type: QWebEnginePage.NavigationType,  # noqa: N802
                                is_main_frame: bool) -> bool:
        url = QUrl(url)
        if is_main_frame and self.expect_load and url.scheme() == "data":
            self.expect_load = False
            return True
        # Frames get no document of their own (data:, srcdoc): one would be parsed without show_html's cleaning.
        self.refused.append(url.toString()[:300])
        return False

    def createWindow(self, _type: QWebEnginePage.WebWindowType) -> None:  # noqa: N802 - no pop-ups
        return None


class HtmlPreview(QWidget):
    loaded = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.profile = QWebEngineProfile(self)  # no storage name: off the record
        self.profile.setHttpCacheType(QWebEngineProfile.HttpCacheType.MemoryHttpCache)
        self.profile.setPersistentCookiesPolicy(QWebEngineProfile.PersistentCookiesPolicy.NoPersistentCookies)
        self.profile.cookieStore().setCookieFilter(lambda _request: False)
        self.interceptor = BlockingInterceptor()
        self.profile.setUrlRequestInterceptor(self.interceptor)
        self.view = QWebEngineView(self)
        self.page = SandboxPage(self.profile, self.view)  # the view owns the page: deleted before the profile
        self.view.setPage(self.page)
        self.page.scripts().insert(guard_script())  # before any of the page's own scripts, in every frame
        self.page.loadFinished.connect(self._on_load_finished)
        self.rendered: bool | None = True  # the last render's outcome; None while one is under way
        self._harden(self.page.settings())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)

    @staticmethod
    def _harden(settings: QWebEngineSettings) -> None:
        a = QWebEngineSettings.WebAttribute
        off = (a.JavascriptEnabled, a.JavascriptCanOpenWindows, a.JavascriptCanAccessClipboard,
               a.LocalStorageEnabled, a.LocalContentCanAccessRemoteUrls, a.LocalContentCanAccessFileUrls,
               a.PluginsEnabled, a.AutoLoadIconsForPage, a.DnsPrefetchEnabled, a.PdfViewerEnabled,
               a.NavigateOnDropEnabled, a.AllowRunningInsecureContent, a.AllowGeolocationOnInsecureOrigins,
               a.WebGLEnabled, a.Accelerated2dCanvasEnabled, a.AllowWindowActivationFromJavaScript,
               a.PlaybackRequiresUserGesture)
        for attribute in off:
            settings.setAttribute(attribute, False)
        settings.setAttribute(a.PlaybackRequiresUserGesture, True)
        settings.setAttribute(a.ScrollAnimatorEnabled, False)

    def set_javascript(self, enabled: bool) -> None:
        """Scripts may run (still with no network, storage or navigation); applies from the next render."""
        self.page.settings().setAttribute(QWebEngineSettings.WebAttribute.JavascriptEnabled, enabled)

    def javascript_enabled(self) -> bool:
        return self.page.settings().testAttribute(QWebEngineSettings.WebAttribute.JavascriptEnabled)

    def show_html(self, html: str) -> None:
        """Render ``html`` (truncated past the data: URL limit); ``loaded`` fires when done."""
        self.page.expect_load = True
        self.rendered = None
        self.page.setHtml(neutralise_links(html[:MAX_HTML_CHARS]), QUrl("about:blank"))

    @Slot(bool)
    def _on_load_finished(self, ok: bool) -> None:
        if not self.page.isLoading():  # a render replaced by a newer one ends too: only the newest one counts
            self.rendered = ok
        self.loaded.emit(ok)

    def wait_loaded(self, timeout_ms: int = 10_000) -> bool:
        """Block (running the event loop) until the current render has finished, or return at once when it already
        has; True when it loaded. For screenshots and tests."""
        deadline = time.monotonic() + timeout_ms / 1000
        while self.rendered is None and time.monotonic() < deadline:
            loop = QEventLoop()
            self.loaded.connect(loop.quit)
            QTimer.singleShot(max(1, int((deadline - time.monotonic()) * 1000)), loop.quit)
            loop.exec()
            self.loaded.disconnect(loop.quit)
        return bool(self.rendered)

    def grab_image(self) -> QImage:
        return self.view.grab().toImage()

    @Slot()
    def dispose(self) -> None:
        """Delete page (with its view) before the profile, as QtWebEngine requires."""
        if shiboken6.isValid(self.view):
            shiboken6.delete(self.view)
        if shiboken6.isValid(self.profile):
            shiboken6.delete(self.profile)
