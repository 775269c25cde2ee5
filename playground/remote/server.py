"""``playground serve``: the loaded model as an OpenAI-compatible server (``/v1/models``, ``/v1/completions``,
``/v1/chat/completions``), streaming over SSE, with token logprobs and top alternatives.

Stdlib only (``http.server``): one thread per connection, one EngineRunner behind them all, so requests queue on
the one device. A client that disconnects (mid-stream, or while its request waits in the queue) cancels its
generation. Request parsing and response shapes live in ``wire.py``. The API key, when set,
is compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import json
import queue
import select
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from playground.domain.jobs import Cancel
from playground.domain.text import GenerationResult, TokenEvent
from playground.remote.wire import (
    ApiError,
    ParsedRequest,
    api_error,
    chat_logprobs,
    completion_logprobs,
    finish_reason,
    parse_chat,
    parse_completion,
    usage_of,
)

MAX_BODY = 8 * 2**20
POLL_S = 0.1  # how often a waiting request checks that its client is still there
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def served_name(model_id: str) -> str:
    """The name clients see: a folder or file path becomes its last part (no paths in model ids)."""
    if "/" in model_id or "\\" in model_id:
        from pathlib import Path

        path = Path(model_id).expanduser()
        if path.exists():
            return path.stem if path.is_file() else path.name
    return model_id


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


class ServeApp:
    """What the handler threads share: the runner (one device queue), the served model id, the key."""

    def __init__(self, runner: Any, model_id: str, api_key: str | None = None,
                 log: Callable[[str], None] | None = None, name: str | None = None) -> None:
        self.runner = runner
        self.model_id = model_id  # what the runner loads
        self.name = name or served_name(model_id)  # what clients see and send as "model"
        self.api_key = api_key or None
        self.created = int(time.time())
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.finished: list[GenerationResult] = []  # last few results (tests check a disconnect cancelled one)

    def model_object(self) -> dict[str, Any]:
        return {"id": self.name, "object": "model", "created": self.created, "owned_by": "playground"}

    def check_model(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "'model' is required", param="model")
        if model not in (self.name, self.model_id):
            raise ApiError(404, f"The model '{model}' does not exist; this server serves '{self.name}'",
                           param="model", code="model_not_found")

    def authorised(self, header: str | None) -> bool:
        if self.api_key is None:
            return True
        scheme, _, token = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.api_key.encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: ServeApp) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.app = app


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "playground-serve"
    server: _Server

    # -- plumbing ------------------------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass  # one line per request is written by _log (the request line only: never headers, so never the key)

    def _log(self, status: int, started: float) -> None:
        self.server.app.log(f"[playground] {self.client_address[0]} {self.command} {self.path} {status} "
                            f"{time.perf_counter() - started:.2f}s")

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, err: ApiError) -> None:
        if err.status == 401:
            self.send_response(401)
            data = json.dumps(err.body()).encode()
            self.send_header("WWW-Authenticate", "Bearer")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._send_json(err.status, err.body())

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as exc:
            raise ApiError(400, "bad Content-Length") from exc
        if length > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, f"the request body is over {MAX_BODY // 2**20} MB")
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"null")
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
        self._route(lambda: self._get())

    def do_POST(self) -> None:  # noqa: N802
        self._route(lambda: self._post())

    def _route(self, handler: Callable[[], int]) -> None:
        started = time.perf_counter()
        status = 500
        try:
            if not self.server.app.authorised(self.headers.get("Authorization")):
                if self.command == "POST":
                    self._drain()
                raise ApiError(401, "Incorrect API key provided", code="invalid_api_key")
            status = handler()
        except ApiError as err:
            status = err.status
            self._send_error(err)
        except (BrokenPipeError, ConnectionResetError):
            status = 499  # the client went away
            self.close_connection = True
        except Exception:  # noqa: BLE001 - a bug: answer 500, keep serving, print the traceback
            traceback.print_exc()
            status = 500
            try:
                self._send_error(ApiError(500, "internal server error", "server_error"))
            except OSError:
                self.close_connection = True
        self._log(status, started)

    def _drain(self) -> None:
        try:
            length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
            if length:
                self.rfile.read(length)
        except (ValueError, OSError):
            self.close_connection = True

    def _get(self) -> int:
        app = self.server.app
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/v1/models":
            self._send_json(200, {"object": "list", "data": [app.model_object()]})
            return 200
        if path.startswith("/v1/models/"):
            if path.removeprefix("/v1/models/") in (app.name, app.model_id):
                self._send_json(200, app.model_object())
                return 200
            raise ApiError(404, f"The model '{path.removeprefix('/v1/models/')}' does not exist",
                           code="model_not_found")
        raise ApiError(404, f"Unknown endpoint GET {path or '/'}; this server offers /v1/models, /v1/completions "
                       "and /v1/chat/completions", code="not_found")

    def _post(self) -> int:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path not in ("/v1/completions", "/v1/chat/completions"):
            self._drain()
            raise ApiError(404, f"Unknown endpoint POST {path}; this server offers /v1/completions and "
                           "/v1/chat/completions", code="not_found")
        body = self._body()
        self.server.app.check_model(body)
        parsed = parse_chat(body) if path == "/v1/chat/completions" else parse_completion(body)
        try:
            parsed.request.validate()
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc
        return self._generate(parsed)

    # -- generation ----------------------------------------------------------------------------------------------
    def _generate(self, parsed: ParsedRequest) -> int:
        app = self.server.app
        cancel = Cancel()
        events: queue.Queue[TokenEvent] = queue.Queue()
        future: Future[GenerationResult] = app.runner.generate(app.model_id, parsed.request, events.put, cancel)
        stream = _Stream(self, parsed) if parsed.stream else None
        while not future.done() or not events.empty():
            try:
                event = events.get(timeout=POLL_S)
            except queue.Empty:
                if not future.done() and self._client_gone():
                    cancel.set()  # the client left while waiting (in the queue, or in a long prefill)
                    self.close_connection = True
                continue
            if stream is not None:
                try:
                    stream.token(event)
                except OSError:
                    cancel.set()  # the client hung up mid-stream: stop generating for nobody
                    self.close_connection = True
        result = self._result(future, stream)
        if result is None:
            return 500 if stream is None else 200
        app.finished.append(result)
        del app.finished[:-8]
        if cancel.is_set():
            return 499
        if stream is not None:
            stream.finish(result)
            return 200
        self._send_json(200, self._whole(parsed, result))
        return 200

    def _result(self, future: Future[GenerationResult], stream: _Stream | None) -> GenerationResult | None:
        """The result; a failure is answered here (a JSON error, or an error event when streaming began)."""
        try:
            return future.result()
        except Exception as exc:  # noqa: BLE001 - every failure must reach the client as an error body
            err = api_error(exc)
            if stream is not None and stream.started:
                stream.fail(err)
                return None
            raise err from exc

    def _whole(self, parsed: ParsedRequest, result: GenerationResult) -> dict[str, Any]:
        model = self.server.app.name
        choices = []
        for i, c in enumerate(result.completions):
            events = list(c.tokens)
            if parsed.chat:
                choices.append({"index": i, "message": {"role": "assistant", "content": c.text},
                                "logprobs": chat_logprobs(events, parsed.logprobs) if parsed.logprobs is not None
                                else None, "finish_reason": finish_reason(c.finish_reason)})
            else:
                choices.append({"index": i, "text": parsed.echo + c.text,
                                "logprobs": completion_logprobs(events) if parsed.logprobs is not None else None,
                                "finish_reason": finish_reason(c.finish_reason)})
        kind = "chat.completion" if parsed.chat else "text_completion"
        prefix = "chatcmpl" if parsed.chat else "cmpl"
        return {"id": f"{prefix}-{uuid.uuid4().hex[:24]}", "object": kind, "created": int(time.time()),
                "model": model, "choices": choices, "usage": usage_of(result)}


class _Stream:
    """SSE output of one request: headers on the first token (so an early failure can still be a 4xx/5xx)."""

    def __init__(self, handler: _Handler, parsed: ParsedRequest) -> None:
        self.h = handler
        self.parsed = parsed
        self.started = False
        self.chat = parsed.chat
        self.id = f"{'chatcmpl' if parsed.chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.offsets: dict[int, int] = {}
        self.roles_sent: set[int] = set()

    def _start(self) -> None:
        if self.started:
            return
        self.started = True
        h = self.h
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream; charset=utf-8")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Connection", "close")  # the end of the stream is the end of the connection
        h.end_headers()
        h.close_connection = True
        if self.parsed.echo:
            self._send([{"index": i, "text": self.parsed.echo, "logprobs": None, "finish_reason": None}
                        for i in range(self.parsed.request.n)])

    def _send(self, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> None:
        chunk: dict[str, Any] = {"id": self.id, "object": "chat.completion.chunk" if self.chat else "text_completion",
                                 "created": self.created, "model": self.h.server.app.name, "choices": choices}
        if usage is not None:
            chunk["usage"] = usage
        self._write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n")

    def _write(self, text: str) -> None:
        self.h.wfile.write(text.encode())
        self.h.wfile.flush()

    def token(self, e: TokenEvent) -> None:
        self._start()
        k = self.parsed.logprobs
        if self.chat:
            if e.completion not in self.roles_sent:
                self.roles_sent.add(e.completion)
                self._send([{"index": e.completion, "delta": {"role": "assistant", "content": ""},
                             "logprobs": None, "finish_reason": None}])
            self._send([{"index": e.completion, "delta": {"content": e.text},
                         "logprobs": chat_logprobs([e], k) if k is not None else None, "finish_reason": None}])
            return
        offset = self.offsets.get(e.completion, len(self.parsed.echo))
        self.offsets[e.completion] = offset + len(e.text)
        self._send([{"index": e.completion, "text": e.text,
                     "logprobs": completion_logprobs([e], offset) if k is not None else None,
                     "finish_reason": None}])

    def finish(self, result: GenerationResult) -> None:
        self._start()
        for i, c in enumerate(result.completions):
            if self.chat:
                if i not in self.roles_sent:
                    self._send([{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                                 "finish_reason": None}])
                self._send([{"index": i, "delta": {}, "logprobs": None,
                             "finish_reason": finish_reason(c.finish_reason)}])
            else:
                self._send([{"index": i, "text": "", "logprobs": None,
                             "finish_reason": finish_reason(c.finish_reason)}])
        if self.parsed.include_usage:
            self._send([], usage_of(result))
        self._write("data: [DONE]\n\n")

    def fail(self, err: ApiError) -> None:
        """An error after the stream began: an error event, and no [DONE] (clients see the stream as failed)."""
        try:
            self._write(f"data: {json.dumps(err.body())}\n\n")
        except OSError:
            pass


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

    def stop(self) -> None:
        """Stop accepting, close the listening socket (requests in flight end with their connections)."""
        if self._served:
            self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
