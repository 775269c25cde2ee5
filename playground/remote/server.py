"""``playground serve``: the loaded model as an OpenAI-compatible server (``/v1/models``, ``/v1/completions``,
``/v1/chat/completions``, ``/health``), streaming over SSE, with token logprobs and top alternatives.

Stdlib only (``http.server``): one thread per connection (at most MAX_CONNECTIONS, each closed after IDLE_TIMEOUT_S
of silence), a listen backlog for bursts of clients, one EngineRunner behind them all (``scheduler.py`` bounds the
queue). A client that disconnects (mid-stream, or while its request waits) cancels its generation. Parsing lives in
``wire.py``, the work of one request in ``serve_run.py``. The API key, when set, is compared in constant time and
never logged; request lines are logged without their query strings. Browsers on http://localhost:* and
http://127.0.0.1:* (and ``--cors-origin`` origins) may call it (CORS).
"""

from __future__ import annotations

import json
import queue
import select
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from playground.domain.jobs import Cancel
from playground.remote import serve_run
from playground.remote.api_error import ApiError, api_error
from playground.remote.serve_app import ServeApp
from playground.remote.wire import parse_chat, parse_completion

MAX_BODY = 8 * 2**20
POLL_S = 0.1  # how often a waiting request checks that its client is still there
LISTEN_BACKLOG = 128  # socketserver's default of 5 resets connections in a burst of 20 clients
IDLE_TIMEOUT_S = 30.0  # a connection silent this long (between requests, or mid-request) is closed
MAX_CONNECTIONS = 256
ROUTES = ("/v1/models", "/v1/completions", "/v1/chat/completions", "/health")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], app: ServeApp) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.app = app
        self.connections = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.connections.acquire(blocking=False):  # full: answer at once rather than leave it hanging
            _refuse_busy(request)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up or times out is normal; anything else is logged once, without a flood."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        self.app.log(f"[playground] error handling a request from {client_address[0]}: {type(exc).__name__}: {exc}")


def _refuse_busy(sock: socket.socket) -> None:
    body = json.dumps(ApiError(503, "too many connections; retry in a few seconds", "server_error",
                               code="server_busy").body()).encode()
    head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Retry-After: 2\r\nConnection: close\r\n\r\n").encode()
    try:
        sock.settimeout(1.0)
        sock.sendall(head + body)
    except OSError:
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "playground-serve"
    timeout = IDLE_TIMEOUT_S
    server: _Server

    # -- plumbing ------------------------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass  # one line per request is written by _log (the request line only: never headers, so never the key)

    def _log(self, status: int, started: float) -> None:
        path = self.path.split("?", 1)[0]  # a query string may carry a secret (?api_key=...): never logged
        self.server.app.log(f"[playground] {self.client_address[0]} {self.command} {path} {status} "
                            f"{time.perf_counter() - started:.2f}s")

    def _headers(self, status: int, content_type: str, length: int | None,
                 extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for key, value in self.server.app.cors.headers(self.headers.get("Origin")).items():
            self.send_header(key, value)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()

    def send_json(self, status: int, payload: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self._headers(status, "application/json", len(data), extra)
        if self.command != "HEAD":  # a HEAD answer has no body: one would be read as the next response's start
            self.wfile.write(data)

    def _send_error(self, err: ApiError) -> None:
        extra = dict(err.headers)
        if err.status == 401:
            extra["WWW-Authenticate"] = "Bearer"
        if err.status >= 500 or err.status == 413:
            self.close_connection = True
        self.send_json(err.status, err.body(), extra)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own errors (bad request line, unsupported method, headers too long) as JSON, not HTML."""
        self.close_connection = True
        try:
            text = message or self.responses.get(code, ("error",))[0]
            self.send_json(code, ApiError(code, text).body())
        except OSError:
            pass

    def _body(self) -> dict[str, Any]:
        header = self.headers.get("Content-Length")
        try:
            length = int(header) if header is not None else 0
        except ValueError as exc:
            raise ApiError(400, "bad Content-Length") from exc
        if length < 0:
            self.close_connection = True
            raise ApiError(400, "bad Content-Length (negative)")
        if length > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, f"the request body is over {MAX_BODY // 2**20} MB")
        raw = self.rfile.read(length) if length else b""
        if len(raw) < length:
            self.close_connection = True
            raise ApiError(400, "the request body ended before Content-Length bytes")
        try:
            body = json.loads(raw or b"null", parse_constant=_no_constant)
        except ValueError as exc:
            raise ApiError(400, "We could not parse the JSON body of your request") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return body

    def _client_gone(self) -> bool:
        """True when the client closed its connection (a readable socket with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    # -- routes --------------------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._route(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._route(self._post)

    def do_OPTIONS(self) -> None:  # noqa: N802 - CORS preflight: no key needed (browsers never send one here)
        started = time.perf_counter()
        origin = self.headers.get("Origin")
        if origin and not self.server.app.cors.allowed(origin):
            self.send_json(403, ApiError(403, f"origin {origin} is not allowed (serve --cors-origin adds one)").body())
            self._log(403, started)
            return
        extra = self.server.app.cors.preflight(self.headers.get("Access-Control-Request-Headers"))
        self._headers(204, "text/plain", 0, {"Allow": "GET, POST, OPTIONS", **extra})
        self._log(204, started)

    def _not_allowed(self) -> None:
        self._drain()
        self._route(lambda: self._refuse_method())

    def _refuse_method(self) -> int:
        raise ApiError(405, f"method {self.command} is not allowed; this server answers GET and POST",
                       code="method_not_allowed", headers={"Allow": "GET, POST, OPTIONS"})

    do_PUT = do_DELETE = do_PATCH = _not_allowed  # noqa: N815

    def do_HEAD(self) -> None:  # noqa: N802
        self._route(self._refuse_method)

    def _route(self, handler: Callable[[], int]) -> None:
        started = time.perf_counter()
        status = 500
        try:
            if not self.server.app.authorised(self.headers.get("Authorization")) and not self._public():
                if self.command == "POST":
                    self._drain()
                raise ApiError(401, "Incorrect API key provided", code="invalid_api_key")
            status = handler()
        except ApiError as err:
            status = err.status
            self._reply_error(err)
        except (ConnectionError, TimeoutError):
            status = 499  # the client went away
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - a bug: answer 500, keep serving, log it once
            status = 500
            self._reply_error(api_error(exc))
        self._log(status, started)

    def _reply_error(self, err: ApiError) -> None:
        try:
            self._send_error(err)
        except OSError:
            self.close_connection = True

    def _public(self) -> bool:
        return self.command == "GET" and self.path.split("?", 1)[0].rstrip("/") == "/health"

    def _drain(self) -> None:
        try:
            length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
            if length > 0:
                self.rfile.read(length)
            elif length < 0:
                self.close_connection = True
        except (ValueError, OSError):
            self.close_connection = True

    def _get(self) -> int:
        app = self.server.app
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/health":
            self.send_json(200, {"status": "ok", "model": app.name, "in_queue": app.scheduler.in_system})
            return 200
        if path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [app.model_object()]})
            return 200
        if path.startswith("/v1/models/"):
            if path.removeprefix("/v1/models/") in (app.name, app.model_id):
                self.send_json(200, app.model_object())
                return 200
            raise ApiError(404, f"The model '{path.removeprefix('/v1/models/')}' does not exist",
                           code="model_not_found")
        raise ApiError(404, f"Unknown endpoint GET {path or '/'}; this server offers {', '.join(ROUTES)}",
                       code="not_found")

    def _post(self) -> int:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path not in ("/v1/completions", "/v1/chat/completions"):
            self._drain()
            raise ApiError(404, f"Unknown endpoint POST {path}; this server offers /v1/completions and "
                           "/v1/chat/completions", code="not_found")
        body = self._body()
        app = self.server.app
        app.check_model(body)
        parsed = parse_chat(body) if path == "/v1/chat/completions" else parse_completion(body)
        for request in parsed.requests:
            request.validate()
        if parsed.request.constraint is not None:  # a malformed schema or regex is a 400 now, not after queueing
            app.runner.check_constraint(parsed.request.constraint)
        cancel = Cancel()
        with app.scheduler.admit(cancel):
            status = serve_run.run(parsed, app, self, cancel)
        if status == 499:
            self.close_connection = True
        return status

    # -- what serve_run needs (serve_run.Waiter) -----------------------------------------------------------------
    def wait(self, future: Future, events: queue.Queue | None = None,
             on_event: Callable[[Any], None] | None = None, cancel: Cancel | None = None) -> Any:
        """``future``'s result, passing each queued event to ``on_event`` meanwhile; cancels the work when the
        client leaves (waiting in the queue, in a long prefill, or mid-stream)."""
        while True:
            done = future.done()
            try:
                event = events.get(timeout=POLL_S) if events is not None else None
            except queue.Empty:
                event = None
            if event is not None and on_event is not None:
                try:
                    on_event(event)
                except OSError:
                    if cancel is not None:
                        cancel.set()  # the client hung up mid-stream: stop generating for nobody
                    self.close_connection = True
                continue
            if done and (events is None or events.empty()):
                return future.result()
            if events is None:
                try:
                    return future.result(timeout=POLL_S)
                except TimeoutError:
                    pass
            if cancel is not None and not cancel.is_set() and self._client_gone():
                cancel.set()
                self.close_connection = True

    def start_stream(self) -> None:
        self._headers(200, "text/event-stream; charset=utf-8", None,
                      {"Cache-Control": "no-cache", "Connection": "close"})  # the stream's end closes it
        self.close_connection = True

    def write(self, text: str) -> None:
        self.wfile.write(text.encode())
        self.wfile.flush()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # json.loads accepts NaN and Infinity unless told otherwise


class PlaygroundServer:
    """The HTTP server around a ServeApp: ``start()`` in a background thread or ``serve_forever()``."""

    def __init__(self, app: ServeApp, host: str = "127.0.0.1", port: int = 8000) -> None:
        self.app = app
        self.httpd = _Server((host, port), app)
        self._thread: threading.Thread | None = None
        self._served = False  # socketserver's shutdown() waits forever for a serve_forever() that never ran

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = str(self.httpd.server_address[0])
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/v1"

    def start(self) -> PlaygroundServer:
        self._served = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="serve-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._served = True
        self.httpd.serve_forever(poll_interval=0.2)

    def stop(self, grace_s: float = 3.0) -> None:
        """Stop accepting, answer every admitted request "shutting down" (503, or an error event mid-stream), give
        them ``grace_s`` to say so, and close the listening socket."""
        self.app.scheduler.close()
        if self._served:
            self.httpd.shutdown()
        deadline = time.monotonic() + grace_s
        while self.app.scheduler.in_system and time.monotonic() < deadline:
            time.sleep(0.05)
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
