"""Model-written HTML is untrusted: a hostile page reaches neither the network nor the disk."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtWebEngineCore import QWebEnginePage

from ui.common.html_preview import HtmlPreview


class Listener:
    """A loopback HTTP server that counts every request it gets."""

    def __init__(self) -> None:
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def _hit(self) -> None:
                hits.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(b"<h1>LEAKED</h1>")

            do_GET = do_POST = do_HEAD = do_OPTIONS = _hit

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="listener", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def preview(qtbot):
    widget = HtmlPreview()
    widget.resize(500, 400)
    widget.show()
    yield widget
    widget.dispose()
    widget.close()
    widget.deleteLater()


def hostile_page(port: int) -> str:
    u = f"http://127.0.0.1:{port}"
    return f"""<html><head>
<meta http-equiv="refresh" content="0;url={u}/refresh">
<link rel="stylesheet" href="{u}/style.css"><link rel="prefetch" href="{u}/prefetch">
<link rel="icon" href="{u}/favicon.ico">
<script src="{u}/script.js"></script>
<style>@import url({u}/import.css); body {{ background: url({u}/bg.png); }}
@font-face {{ font-family: x; src: url({u}/font.woff); }} h1 {{ font-family: x; }}</style>
</head><body><h1>Hostile</h1>
<img src="{u}/img.png"><img src="file:///etc/hostname"><video src="{u}/video.mp4" autoplay></video>
<iframe src="{u}/frame"></iframe><iframe src="file:///etc/passwd"></iframe>
<object data="{u}/object"></object><embed src="{u}/embed">
<form id="f" action="{u}/form" method="post"><input name="a" value="1"></form>
<a id="l" href="{u}/link">link</a>
<script>
fetch("{u}/fetch").catch(() => {{}});
new Image().src = "{u}/jsimg";
if (navigator.sendBeacon) navigator.sendBeacon("{u}/beacon", "x");
try {{ new WebSocket("ws://127.0.0.1:{port}/ws"); }} catch (e) {{}}
fetch("file:///etc/hostname").then(r => r.text()).then(t => {{ document.title = "READ:" + t; }}).catch(() => {{}});
try {{ var x = new XMLHttpRequest(); x.open("GET", "file:///etc/passwd", false); x.send();
      document.title = "READ:" + x.responseText; }} catch (e) {{}}
window.open("{u}/popup");
document.getElementById("l").click();
document.getElementById("f").submit();
setTimeout(() => {{ location.href = "{u}/nav"; }}, 50);
</script></body></html>"""


@pytest.mark.parametrize("javascript", [False, True], ids=["js-off", "js-on"])
def test_hostile_page_reaches_nothing(qtbot, preview, listener, javascript):
    preview.set_javascript(javascript)
    with qtbot.waitSignal(preview.loaded, timeout=15_000):
        preview.show_html(hostile_page(listener.port))
    qtbot.wait(2500)  # time for refreshes, timers, submits and late loads
    assert listener.hits == []
    assert not preview.page.title().startswith("READ:")
    assert any("/img.png" in u for u in preview.interceptor.blocked)
    # file: URLs never load: Chromium refuses them from this origin before the interceptor even sees them.
    if javascript:
        assert any("/fetch" in u or "/jsimg" in u for u in preview.interceptor.blocked)
    # The page is still ours: the heading rendered, nothing navigated away.
    assert preview.page.url().scheme() in {"data", "about"}


def test_links_and_forms_cannot_navigate(preview):
    page = preview.page
    for nav in (QWebEnginePage.NavigationType.NavigationTypeLinkClicked,
                QWebEnginePage.NavigationType.NavigationTypeFormSubmitted,
                QWebEnginePage.NavigationType.NavigationTypeRedirect):
        assert page.acceptNavigationRequest(QUrl("http://127.0.0.1:9/x"), nav, True) is False
        assert page.acceptNavigationRequest(QUrl("file:///etc/passwd"), nav, True) is False


def test_profile_is_off_the_record_and_javascript_is_off_by_default(preview):
    assert preview.profile.isOffTheRecord()
    assert preview.javascript_enabled() is False


def test_a_benign_page_renders(qtbot, preview):
    with qtbot.waitSignal(preview.loaded, timeout=15_000) as blocker:
        preview.show_html("<html><body style='background:#ffffff'><h1 style='color:#cc0000'>Welcome</h1>"
                          "<button>Subscribe</button></body></html>")
    assert blocker.args == [True]
    qtbot.wait(300)
    image = preview.grab_image()
    reds = sum(1 for x in range(0, image.width(), 3) for y in range(0, min(image.height(), 120), 3)
               if image.pixelColor(x, y).red() > 150 and image.pixelColor(x, y).green() < 80)
    assert reds > 10  # the red heading is on screen, the view is not blank
