"""Small HTTP peers for the failure cases a real server will not produce on demand (a slow one, one that omits
logprobs, one that answers garbage): each is a real socket server on loopback, driven by a handler function."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = Callable[["PeerHandler", dict[str, Any]], None]


class PeerHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _PeerServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch({})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self._dispatch(body)

    def _dispatch(self, body: dict[str, Any]) -> None:
        self.server.peer.requests.append((self.command, self.path, dict(self.headers), body))
        route = self.server.peer.routes.get((self.command, self.path))
        if route is None:
            self.send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        route(self, body)

    # -- helpers for routes ----------------------------------------------------------------------------------
    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def sse(self, data: Any) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        self.wfile.write(f"data: {text}\n\n".encode())
        self.wfile.flush()

    def wait(self, seconds: float) -> None:
        """Sleep, but end at once when the peer is stopped."""
        self.server.peer.stopping.wait(seconds)


class _PeerServer(ThreadingHTTPServer):
    daemon_threads = True
    peer: Peer


class Peer:
    """``with Peer({("POST", "/v1/completions"): route}) as peer: peer.url``."""

    def __init__(self, routes: dict[tuple[str, str], Route], tls: Any = None) -> None:
        self.routes = routes
        self.requests: list[tuple[str, str, dict[str, str], dict[str, Any]]] = []
        self.stopping = threading.Event()
        self.httpd = _PeerServer(("127.0.0.1", 0), PeerHandler)
        self.httpd.peer = self
        self.scheme = "https" if tls is not None else "http"
        if tls is not None:  # an ssl.SSLContext: serve HTTPS
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="test-peer", daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> Peer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class CancelAfter:
    """An event callback that records events and sets its Cancel once ``count`` have arrived (mid-stream)."""

    def __init__(self, count: int) -> None:
        from playground.domain.jobs import Cancel

        self.count = count
        self.cancel = Cancel()
        self.seen: list[Any] = []

    def __call__(self, event: Any) -> None:
        self.seen.append(event)
        if len(self.seen) == self.count:
            self.cancel.set()


def completion_chunk(text: str, logprobs: Any = None, finish: str | None = None) -> dict[str, Any]:
    return {"id": "cmpl-1", "object": "text_completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish}]}
