"""An HTTP client for OpenAI-compatible servers: models, streamed completions and chats over SSE, images.

- Timeouts: a connect timeout, a read timeout (the longest silence between two bytes, e.g. a long prefill) and an
  overall deadline per request (a server dripping a byte now and then defeats the read timeout): past it the
  connection is closed and RemoteDeadline says so. Lines and bodies are read with a size cap (``sse.py``).
- Retries with exponential backoff on connection errors only, before any response: a request the server has
  started answering is never sent twice (it may already be generating).
- Every HTTP failure becomes a ``RemoteError`` subclass with one line that says what to do (401/403, 404, 429
  with Retry-After, 5xx, malformed JSON, a stream that ended before ``[DONE]``). The API key is never in a
  message, a repr or a log line: server text is scrubbed of it before it is shown.
- Cancel closes the connection at once: each streamed request gets its own connection, whose socket is captured
  through httpcore's trace hook, and a watcher shuts it down when the ``Cancel`` is set, so a blocked read returns
  and the server sees the disconnect (it stops generating).
- TLS is always verified.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from playground.domain.jobs import Cancel
from playground.errors import (
    RemoteAuthError,
    RemoteBadRequest,
    RemoteDeadline,
    RemoteError,
    RemoteNotFound,
    RemoteProtocolError,
    RemoteRateLimited,
    RemoteServerError,
    RemoteTimeout,
    RemoteUnreachable,
)
from playground.remote import sse
from playground.remote.cancel_watch import CancelWatch, shutdown_sockets, wait_or_cancel
from playground.remote.error_text import MAX_ERROR_CHARS, error_text, is_tls_failure, reason, retry_after

CONNECT_TIMEOUT_S = 10.0
RETRIES = 3  # connection attempts after the first
BACKOFF_S = 0.5  # first wait; doubled each retry (0.5, 1, 2 s)
MAX_ERROR_BODY = 2**20  # an error answer is read up to this much


@dataclass(frozen=True)
class ServerModel:
    """One entry of the server's ``/v1/models``."""

    id: str
    owned_by: str = ""


class _Cancelled(RemoteError):
    """The request was cancelled (callers that pass a Cancel treat it as a quiet end)."""


class RemoteClient:
    """Talks to one server. Thread-safe: each call uses its own connection (concurrent compare columns share it)."""

    def __init__(self, base_url: str, api_key: str | None = None, name: str = "", read_timeout: float = 120.0,
                 connect_timeout: float = CONNECT_TIMEOUT_S, retries: int = RETRIES,
                 backoff_s: float = BACKOFF_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name or httpx.URL(self.base_url).host
        self.read_timeout = read_timeout
        self.connect_timeout = connect_timeout
        self.retries = retries
        self.backoff_s = backoff_s
        self._key = api_key or None
        self._ssl = ssl.create_default_context()  # verified; built once (loading CA certificates is slow)
        try:
            import certifi

            self._ssl.load_verify_locations(certifi.where())
        except (ImportError, OSError):
            pass

    def __repr__(self) -> str:  # never the key
        return f"RemoteClient({self.name!r}, {self.base_url!r}, key={'set' if self._key else 'none'})"

    # -- the API ---------------------------------------------------------------------------------------------------
    def list_models(self, cancel: Cancel | None = None) -> list[ServerModel]:
        """The server's ``/v1/models`` (ids in the server's order)."""
        data = self.get_json("/models", cancel)
        items = data.get("data") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise RemoteProtocolError(f"{self.name}: /models answered without a model list")
        out = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                out.append(ServerModel(item["id"], str(item.get("owned_by") or "")))
        return out

    def get_json(self, path: str, cancel: Cancel | None = None) -> Any:
        """GET ``path``; the parsed JSON answer. Raises a RemoteError (a cancelled one says so)."""
        with self._open("GET", path, None, cancel, self._default_deadline()) as response:
            return self._json_body(response, path)

    def post_json(self, path: str, body: dict[str, Any], cancel: Cancel | None = None,
                  deadline_s: float | None = None) -> Any:
        """POST ``body``; the parsed JSON answer. Raises a RemoteError (or returns None when cancelled)."""
        try:
            with self._open("POST", path, body, cancel, deadline_s or self._default_deadline()) as response:
                return self._json_body(response, path)
        except RemoteError:
            if cancel is not None and cancel.is_set():
                return None
            raise

    def stream(self, path: str, body: dict[str, Any], cancel: Cancel | None = None,
               deadline_s: float | None = None) -> Iterator[dict[str, Any]]:
        """POST ``body`` with ``stream: true``; yield each SSE event's JSON until ``data: [DONE]``. Past
        ``deadline_s`` (default: twice the read timeout) the connection is closed and RemoteDeadline raised.

        Ends quietly when ``cancel`` is set (the connection is closed at once). Raises RemoteProtocolError when the
        stream ends without ``[DONE]`` (truncated) or carries malformed JSON, RemoteServerError for an error event.
        A server that ignores ``stream`` and answers with one JSON object yields that object.
        """
        cancel = cancel or Cancel()
        try:
            with self._open("POST", path, {**body, "stream": True}, cancel,
                            deadline_s or self._default_deadline()) as response:
                if "json" in response.headers.get("content-type", ""):
                    yield self._json_body(response, path)
                    return
                yield from self._sse(response, path, cancel)
        except _Cancelled:
            return

    # -- requests ----------------------------------------------------------------------------------------------
    def _default_deadline(self) -> float:
        return 2 * self.read_timeout

    @contextlib.contextmanager
    def _open(self, method: str, path: str, body: dict[str, Any] | None, cancel: Cancel | None,
              deadline_s: float) -> Iterator[httpx.Response]:
        """A response with a 2xx status (others raise), on its own connection that ``cancel`` (or the deadline)
        shuts down."""
        headers = {"Accept": "text/event-stream, application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        sockets: list[socket.socket] = []

        def trace(event: str, info: dict[str, Any]) -> None:
            if event == "connection.connect_tcp.complete":
                stream = info.get("return_value")
                sock = stream.get_extra_info("socket") if stream is not None else None
                if sock is not None:
                    sockets.append(sock)

        timeout = httpx.Timeout(self.read_timeout, connect=self.connect_timeout)
        url = self.base_url + path
        watch = CancelWatch(cancel or Cancel(), lambda: shutdown_sockets(sockets), deadline_s)
        try:
            with httpx.Client(verify=self._ssl, timeout=timeout, follow_redirects=False,
                              limits=httpx.Limits(max_keepalive_connections=0)) as http:
                request = http.build_request(method, url, json=body, headers=headers, extensions={"trace": trace})
                response = self._send(http, request, cancel)
                try:
                    if response.status_code >= 300:
                        raw = sse.body(response, self.name, path, MAX_ERROR_BODY)
                        raise self._status_error(response, raw, path, body)
                    yield response
                except RemoteProtocolError as exc:  # an end of stream caused by the deadline's hang-up
                    if watch.expired and not isinstance(exc, RemoteDeadline):
                        raise self._deadline_error(deadline_s, path) from exc
                    raise
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    if watch.expired:
                        raise self._deadline_error(deadline_s, path) from exc
                    if cancel is not None and cancel.is_set():
                        raise _Cancelled("cancelled") from exc
                    raise self._transport_error(exc, url, midway=True) from exc
                finally:
                    response.close()
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            if watch.expired:
                raise self._deadline_error(deadline_s, path) from exc
            raise
        finally:
            watch.stop()

    def _send(self, http: httpx.Client, request: httpx.Request, cancel: Cancel | None) -> httpx.Response:
        """Send, retrying with backoff while no connection can be made (nothing reached the server)."""
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            if cancel is not None and cancel.is_set():
                raise _Cancelled("cancelled")
            try:
                return http.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if cancel is not None and cancel.is_set():
                    raise _Cancelled("cancelled") from exc
                if is_tls_failure(exc) or attempt == self.retries:
                    raise self._transport_error(exc, str(request.url), midway=False) from exc
                if wait_or_cancel(delay, cancel):
                    raise _Cancelled("cancelled") from exc
                delay *= 2
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if cancel is not None and cancel.is_set():
                    raise _Cancelled("cancelled") from exc
                raise self._transport_error(exc, str(request.url), midway=False) from exc
        raise AssertionError("unreachable")

    # -- answers -----------------------------------------------------------------------------------------------
    def _json_body(self, response: httpx.Response, path: str) -> Any:
        raw = sse.body(response, self.name, path)
        try:
            return json.loads(raw)
        except ValueError as exc:
            text = raw[:80].decode("utf-8", errors="replace")
            raise RemoteProtocolError(f"{self.name}: {path} answered with malformed JSON "
                                      f"({self._scrub(text)!r})") from exc

    def _deadline_error(self, deadline_s: float, path: str) -> RemoteDeadline:
        return RemoteDeadline(f"{self.name}: the answer from {path} did not finish within {deadline_s:g} s (overall "
                              "deadline; the server is too slow or stalled); the text received so far is kept")

    def _sse(self, response: httpx.Response, path: str, cancel: Cancel) -> Iterator[dict[str, Any]]:
        """Server-sent events: ``data:`` lines joined until a blank line; comments and other fields ignored."""
        data: list[str] = []
        lines = sse.lines(response, self.name, path)
        while True:
            try:
                line = next(lines, None)
            except (httpx.TimeoutException, httpx.TransportError):
                if cancel.is_set():
                    return
                raise
            if cancel.is_set():
                return
            if line is None or line == "":
                if data:
                    text = "\n".join(data)
                    data = []
                    if text.strip() == "[DONE]":
                        return
                    yield self._event(text, path)
                if line is None:
                    raise RemoteProtocolError(f"{self.name}: the stream from {path} ended before [DONE] (truncated: "
                                              "the server stopped or the connection dropped)")
                continue
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))

    def _event(self, text: str, path: str) -> dict[str, Any]:
        try:
            event = json.loads(text)
        except ValueError as exc:
            raise RemoteProtocolError(f"{self.name}: malformed JSON in the stream from {path} "
                                      f"({self._scrub(text[:80])!r})") from exc
        if not isinstance(event, dict):
            raise RemoteProtocolError(f"{self.name}: unexpected event in the stream from {path}")
        if event.get("error"):
            raise RemoteServerError(f"{self.name}: the server reported an error mid-stream: "
                                    f"{self._scrub(error_text(event))}")
        return event

    # -- errors ------------------------------------------------------------------------------------------------
    def _status_error(self, response: httpx.Response, raw: bytes, path: str,
                      body: dict[str, Any] | None) -> RemoteError:
        status = response.status_code
        text = raw.decode("utf-8", errors="replace")
        try:
            detail = error_text(json.loads(text))
        except ValueError:
            detail = text.strip()
        detail = self._scrub(detail)
        said = f": {detail}" if detail else ""
        name = self.name
        if status in (401, 403):
            hint = "" if self._key else "; this endpoint has no API key set"
            return RemoteAuthError(f"{name}: the server refused the API key ({status}){hint}")
        if status == 404:
            model = (body or {}).get("model")
            what = f"no such model {model!r} or endpoint {path}" if model else f"no such endpoint {path}"
            return RemoteNotFound(f"{name}: {what} (404{said})")
        if status == 429:
            retry = retry_after(response.headers.get("retry-after"))
            wait = f"; retry after {retry:g} s" if retry is not None else "; wait a little and retry"
            return RemoteRateLimited(f"{name}: rate limited (429){wait}", retry)
        if status in (400, 413, 422):
            return RemoteBadRequest(f"{name}: the server rejected the request ({status}{said})")
        if 300 <= status < 400:
            where = response.headers.get("location", "?")
            return RemoteError(f"{name}: the server redirects to {where}; use that URL as the base URL")
        if status >= 500:
            return RemoteServerError(f"{name}: server error ({status}{said})")
        return RemoteError(f"{name}: unexpected answer {status} from {path}{said}")

    def _transport_error(self, exc: Exception, url: str, midway: bool) -> RemoteError:
        name = self.name
        if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout):
            return RemoteTimeout(f"{name}: no answer from {url} within {self.read_timeout:g} s (read timeout); the "
                                 "server may be overloaded, or raise the endpoint's timeout")
        if midway:
            return RemoteProtocolError(f"{name}: the answer was cut off (truncated: {reason(exc)})")
        if is_tls_failure(exc):
            return RemoteUnreachable(f"{name}: the TLS certificate of {url} could not be verified ({reason(exc)})")
        if isinstance(exc, httpx.ConnectTimeout):
            return RemoteUnreachable(f"{name}: cannot connect to {url} (no answer within {self.connect_timeout:g} s, "
                                     f"{self.retries + 1} tries); check the URL and that the server is running")
        if isinstance(exc, httpx.ConnectError):
            return RemoteUnreachable(f"{name}: cannot connect to {url} ({reason(exc)}, {self.retries + 1} tries); "
                                     "check the URL and that the server is running")
        return RemoteError(f"{name}: request to {url} failed ({reason(exc)})")

    def _scrub(self, text: str) -> str:
        """One line of server text, without the API key (some servers echo a wrong key back)."""
        line = " ".join(str(text).split())[:MAX_ERROR_CHARS]
        return line.replace(self._key, "***") if self._key else line
