"""``playground serve``: the loaded model as an OpenAI-compatible server (``/v1/models``, ``/v1/completions``,
``/v1/chat/completions``), streaming over SSE, with token logprobs and top alternatives.

Stdlib only (``http.server``): one thread per connection, one EngineRunner behind them all, so requests queue on
the one device. A client that disconnects (mid-stream, or while its request waits in the queue) cancels its
generation. Errors are OpenAI-shaped: ``{"error": {"message", "type", "param", "code"}}``. The API key, when set,
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
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from playground.domain import FinishReason, GenerationRequest, GenerationResult, TokenEvent
from playground.engine.generate import Cancel
from playground.errors import ContextOverflow, KnownError, OutOfMemory

MAX_BODY = 8 * 2**20
MAX_N = 16
MAX_LOGPROBS = 20
POLL_S = 0.1  # how often a waiting request checks that its client is still there
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ApiError(Exception):
    """An OpenAI-style error answer."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


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


# -- request parsing ---------------------------------------------------------------------------------------------
def _number(body: dict[str, Any], key: str, default: float, lo: float, hi: float, lo_open: bool = False) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, f"'{key}' must be a number", param=key)
    if value > hi or value < lo or (lo_open and value == lo):
        raise ApiError(400, f"'{key}' must be {'above' if lo_open else 'at least'} {lo:g} and at most {hi:g}",
                       param=key)
    return float(value)


def _integer(body: dict[str, Any], key: str, default: int | None, lo: int, hi: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"'{key}' must be an integer", param=key)
    if value < lo or (hi is not None and value > hi):
        raise ApiError(400, f"'{key}' must be between {lo} and {hi}" if hi is not None else
                       f"'{key}' must be at least {lo}", param=key)
    return value


def _stops(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise ApiError(400, "'stop' must be a string or a list of strings", param="stop")
    return tuple(s for s in stop if s)


def _unsupported(body: dict[str, Any]) -> None:
    for key in ("presence_penalty", "frequency_penalty"):
        if body.get(key) not in (None, 0, 0.0):
            raise ApiError(400, f"'{key}' is not supported by this server (use repetition_penalty)", param=key)
    for key in ("logit_bias", "suffix", "tools", "functions", "response_format"):
        if body.get(key) not in (None, {}, [], "") and not (key == "response_format" and body[key] ==
                                                            {"type": "text"}):
            raise ApiError(400, f"'{key}' is not supported by this server", param=key)
    if body.get("best_of") not in (None, 1):
        raise ApiError(400, "'best_of' is not supported by this server", param="best_of")


def _sampling(body: dict[str, Any], max_tokens_key: str = "max_tokens", default_max: int = 16) -> dict[str, Any]:
    _unsupported(body)
    max_tokens = body.get(max_tokens_key)
    if max_tokens is None and max_tokens_key != "max_tokens":
        max_tokens = body.get("max_tokens")
    return {
        "max_new_tokens": _integer({"max_tokens": max_tokens}, "max_tokens", default_max, 1),
        "temperature": _number(body, "temperature", 1.0, 0.0, 2.0),
        "top_p": _number(body, "top_p", 1.0, 0.0, 1.0, lo_open=True),
        "top_k": _integer(body, "top_k", 0, 0) or 0,
        "repetition_penalty": _number(body, "repetition_penalty", 1.0, 0.0, 10.0, lo_open=True),
        "stop": _stops(body),
        "seed": _integer(body, "seed", None, 0, 2**63 - 1),
        "n": _integer(body, "n", 1, 1, MAX_N),
    }


def _message_text(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}]
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ApiError(400, "only text content parts are supported", param=f"messages[{index}].content")
            parts.append(part["text"])
        return "".join(parts)
    if content is None:
        return ""
    raise ApiError(400, "'content' must be a string or a list of text parts", param=f"messages[{index}].content")


def transcript(messages: list[dict[str, str]]) -> str:
    """A plain "Role: text" transcript ending with "Assistant:", for models without a chat template."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join([*lines, "Assistant:"])


@dataclass(frozen=True)
class ParsedRequest:
    chat: bool
    request: GenerationRequest
    stream: bool
    logprobs: int | None  # None: not asked for
    echo: str  # prompt text echoed before the completion ("" = no echo)
    include_usage: bool


def parse_completion(body: dict[str, Any]) -> ParsedRequest:
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise ApiError(400, "'prompt' must be one string (lists of prompts or token ids are not supported)",
                           param="prompt")
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise ApiError(400, "'prompt' is required and must be a string", param="prompt")
    logprobs = _integer(body, "logprobs", None, 0, MAX_LOGPROBS)
    echo = bool(body.get("echo"))
    if echo and logprobs is not None:
        raise ApiError(400, "'echo' together with 'logprobs' (prompt logprobs) is not supported", param="echo")
    request = GenerationRequest(prompt=prompt, top_logprobs=logprobs or 0, **_sampling(body))
    return ParsedRequest(False, request, bool(body.get("stream")), logprobs, prompt if echo else "",
                         _include_usage(body))


def parse_chat(body: dict[str, Any]) -> ParsedRequest:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list", param="messages")
    turns = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise ApiError(400, "each message needs a 'role'", param=f"messages[{i}]")
        if m["role"] not in ("system", "developer", "user", "assistant"):
            raise ApiError(400, f"role {m['role']!r} is not supported", param=f"messages[{i}].role")
        role = "system" if m["role"] == "developer" else m["role"]
        turns.append({"role": role, "content": _message_text(m.get("content"), i)})
    logprobs = body.get("logprobs")
    if logprobs not in (None, True, False):
        raise ApiError(400, "'logprobs' must be a boolean", param="logprobs")
    top = _integer(body, "top_logprobs", None, 0, MAX_LOGPROBS)
    if top is not None and not logprobs:
        raise ApiError(400, "'top_logprobs' needs 'logprobs': true", param="top_logprobs")
    k = (top or 0) if logprobs else None
    request = GenerationRequest(prompt=transcript(turns), messages=tuple(turns), top_logprobs=k or 0,
                                **_sampling(body, "max_completion_tokens", default_max=256))
    return ParsedRequest(True, request, bool(body.get("stream")), k, "", _include_usage(body))


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


# -- response shapes ------------------------------------------------------------------------------------------------
def _finish(reason: FinishReason) -> str:
    return "length" if reason == FinishReason.LENGTH else "stop"


def completion_logprobs(events: list[TokenEvent], offset: int = 0) -> dict[str, Any]:
    """The legacy completions ``logprobs`` object for a run of tokens."""
    offsets, at = [], offset
    for e in events:
        offsets.append(at)
        at += len(e.text)
    return {"tokens": [e.text for e in events], "token_logprobs": [e.logprob for e in events],
            "top_logprobs": [_top_dict(e) for e in events], "text_offset": offsets}


def _top_dict(e: TokenEvent) -> dict[str, float]:
    top: dict[str, float] = {}
    for a in e.top:  # two ids can decode to the same text: keep the likelier
        if a.text not in top or a.logprob > top[a.text]:
            top[a.text] = a.logprob
    return top


def chat_logprobs(events: list[TokenEvent], k: int) -> dict[str, Any]:
    """The chat ``logprobs`` object: ``{"content": [{"token", "logprob", "bytes", "top_logprobs"}]}``."""
    return {"content": [{"token": e.text, "logprob": e.logprob, "bytes": list(e.text.encode()),
                         "top_logprobs": [{"token": a.text, "logprob": a.logprob, "bytes": list(a.text.encode())}
                                          for a in e.top[:k]]} for e in events]}


def _usage(result: GenerationResult) -> dict[str, int]:
    completion = sum(len(c.tokens) for c in result.completions)
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": completion,
            "total_tokens": result.prompt_tokens + completion}


# -- the server ----------------------------------------------------------------------------------------------------
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
            err = _api_error(exc)
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
                                else None, "finish_reason": _finish(c.finish_reason)})
            else:
                choices.append({"index": i, "text": parsed.echo + c.text,
                                "logprobs": completion_logprobs(events) if parsed.logprobs is not None else None,
                                "finish_reason": _finish(c.finish_reason)})
        kind = "chat.completion" if parsed.chat else "text_completion"
        prefix = "chatcmpl" if parsed.chat else "cmpl"
        return {"id": f"{prefix}-{uuid.uuid4().hex[:24]}", "object": kind, "created": int(time.time()),
                "model": model, "choices": choices, "usage": _usage(result)}


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
                self._send([{"index": i, "delta": {}, "logprobs": None, "finish_reason": _finish(c.finish_reason)}])
            else:
                self._send([{"index": i, "text": "", "logprobs": None, "finish_reason": _finish(c.finish_reason)}])
        if self.parsed.include_usage:
            self._send([], _usage(result))
        self._write("data: [DONE]\n\n")

    def fail(self, err: ApiError) -> None:
        """An error after the stream began: an error event, and no [DONE] (clients see the stream as failed)."""
        try:
            self._write(f"data: {json.dumps(err.body())}\n\n")
        except OSError:
            pass


def _api_error(exc: BaseException) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ContextOverflow):
        return ApiError(400, str(exc), code="context_length_exceeded")
    if isinstance(exc, OutOfMemory):
        return ApiError(503, str(exc), "server_error")
    if isinstance(exc, ValueError):
        return ApiError(400, str(exc))
    if isinstance(exc, KnownError):
        return ApiError(500, str(exc), "server_error")
    traceback.print_exception(exc)
    return ApiError(500, f"internal server error ({type(exc).__name__})", "server_error")


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
