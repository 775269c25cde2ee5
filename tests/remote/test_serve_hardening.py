"""``serve`` under bad input and load (issue 15, items 19 and 21): each answer is one JSON error, never HTML, a
reset or a traceback; bursts of streaming clients all get their streams; shutdown answers what is still queued."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.remote.conftest import SERVED_NAME


class _Logged:
    def __init__(self, server, runner, lines) -> None:  # noqa: ANN001
        self.server, self.runner, self.lines = server, runner, lines
        self.url = server.url
        self.port = server.port


def _start(long_tiny_dir, home, monkeypatch, **app_kwargs) -> _Logged:  # noqa: ANN001
    from playground.remote.serve_app import ServeApp
    from playground.remote.server import PlaygroundServer
    from playground.runtime.runner import EngineRunner

    monkeypatch.setenv("PLAYGROUND_HOME", str(home))
    runner = EngineRunner(device="cpu", dtype="float32", thread_name="serve-engine")
    runner.load(str(long_tiny_dir)).result(60)
    lines: list[str] = []
    app = ServeApp(runner, str(long_tiny_dir), log=lines.append, name=SERVED_NAME, **app_kwargs)
    return _Logged(PlaygroundServer(app, "127.0.0.1", 0).start(), runner, lines)


@pytest.fixture
def own(long_tiny_dir, tmp_path, monkeypatch) -> Iterator[_Logged]:
    served = _start(long_tiny_dir, tmp_path, monkeypatch)
    yield served
    served.server.stop()
    served.runner.shutdown()


def _raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"}" in chunk:
                break
    return b"".join(chunks)


def _json_status(reply: bytes) -> tuple[int, dict]:
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"application/json" in head, head
    return int(head.split()[1]), json.loads(body)


def test_negative_content_length_is_refused_at_once(own) -> None:
    started = time.perf_counter()
    reply = _raw(own.port, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}")
    status, body = _json_status(reply)
    assert status == 400 and "Content-Length" in body["error"]["message"]
    assert time.perf_counter() - started < 2  # before: read until the client closed


@pytest.mark.parametrize("field", ['"temperature": NaN', '"temperature": 1e-45', '"repetition_penalty": NaN',
                                   '"top_p": Infinity', '"presence_penalty": NaN'])
def test_nan_and_tiny_numbers_are_400_not_500(own, field) -> None:
    body = f'{{"model": "{SERVED_NAME}", "prompt": "x", "max_tokens": 2, {field}}}'.encode()
    reply = _raw(own.port, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    status, payload = _json_status(reply)
    assert status == 400, payload


@pytest.mark.parametrize("method,status", [("PUT", 405), ("DELETE", 405), ("PATCH", 405), ("BREW", 501)])
def test_other_methods_get_json_not_html(own, method, status) -> None:
    reply = _raw(own.port, f"{method} /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
    got, body = _json_status(reply)
    assert got == status and body["error"]["message"]


def test_query_strings_never_reach_the_log(own) -> None:
    httpx.get(f"{own.url}/models?api_key=sk-leak-123&x=1")
    deadline = time.monotonic() + 5  # the server logs a request after it has answered it
    while not own.lines and time.monotonic() < deadline:
        time.sleep(0.01)
    assert own.lines and not any("sk-leak" in line or "?" in line for line in own.lines)
    assert any("GET /v1/models 200" in line for line in own.lines)


def test_a_burst_of_streaming_clients_all_get_their_streams(own) -> None:
    results: list[str] = []

    def one(i: int) -> None:
        try:
            with httpx.stream("POST", f"{own.url}/completions", timeout=60, json={
                    "model": SERVED_NAME, "prompt": f"client {i}", "max_tokens": 6, "temperature": 0,
                    "stream": True}) as r:
                text = "".join(r.iter_text())
            results.append("ok" if r.status_code == 200 and text.rstrip().endswith("data: [DONE]") else text)
        except httpx.HTTPError as exc:
            results.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == ["ok"] * 24  # before: connection resets once past a listen backlog of 5


def test_a_full_queue_answers_503_with_retry_after(long_tiny_dir, tmp_path, monkeypatch) -> None:
    served = _start(long_tiny_dir, tmp_path, monkeypatch, max_queue=1)
    try:
        with httpx.stream("POST", f"{served.url}/completions", timeout=60, json={
                "model": SERVED_NAME, "prompt": "long", "max_tokens": 3000, "stream": True}) as long:
            next(long.iter_lines())  # it is generating
            busy = httpx.post(f"{served.url}/completions", json={"model": SERVED_NAME, "prompt": "x"})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
        assert busy.json()["error"]["code"] == "server_busy"
    finally:
        served.server.stop()
        served.runner.shutdown()


def test_shutdown_answers_queued_requests_cleanly(long_tiny_dir, tmp_path, monkeypatch, capfd) -> None:
    served = _start(long_tiny_dir, tmp_path, monkeypatch)
    answers: list[tuple[int, str]] = []

    def ask() -> None:
        r = httpx.post(f"{served.url}/completions", timeout=30,
                       json={"model": SERVED_NAME, "prompt": "queued", "max_tokens": 2000})
        answers.append((r.status_code, r.json()["error"]["code"] if r.status_code != 200 else ""))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while served.server.app.scheduler.in_system < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    served.server.stop()
    served.runner.shutdown(wait=False)
    for t in threads:
        t.join(30)
    served.runner.shutdown()
    assert answers == [(503, "shutting_down")] * 4  # before: 500 and a traceback each
    assert "Traceback" not in capfd.readouterr().err


def test_clients_hanging_up_mid_stream_leave_no_traceback(own, capfd) -> None:
    body = json.dumps({"model": SERVED_NAME, "prompt": "x", "max_tokens": 500, "stream": True}).encode()
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", own.port)) as sock:
            sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            sock.recv(200)  # the stream started; hang up
    time.sleep(1.0)
    assert httpx.get(f"{own.url}/models").status_code == 200  # still serving
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_an_idle_connection_is_closed(long_tiny_dir, tmp_path, monkeypatch) -> None:
    from playground.remote import server as server_module

    assert server_module._Handler.timeout == server_module.IDLE_TIMEOUT_S <= 60  # before: None (wait forever)
    monkeypatch.setattr(server_module._Handler, "timeout", 0.5)
    served = _start(long_tiny_dir, tmp_path, monkeypatch)
    try:
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
            started = time.perf_counter()
            assert sock.recv(100) == b""  # closed by the server: no thread held forever
            assert time.perf_counter() - started < 3
    finally:
        served.server.stop()
        served.runner.shutdown()


def test_chat_bytes_of_a_token_inside_a_character(own) -> None:
    reply = httpx.post(f"{own.url}/chat/completions", timeout=30, json={
        "model": SERVED_NAME, "messages": [{"role": "user", "content": "x"}], "max_tokens": 10, "temperature": 0,
        "logprobs": True, "structured_outputs": {"regex": "é{3}"}}).json()
    content = reply["choices"][0]["logprobs"]["content"]
    assert reply["choices"][0]["message"]["content"] == "ééé"
    assert [t["token"] for t in content] == ["", "é"] * 3  # byte tokens: the first half of "é" has no text
    assert bytes(b for t in content for b in t["bytes"]) == "ééé".encode()  # before: [] for the first halves


def test_a_head_answer_has_no_body_and_the_connection_stays_usable(own) -> None:
    """Found by the serve fuzz test: HEAD's 405 carried a JSON body, read as the start of the next response."""
    with httpx.Client(base_url=own.url.removesuffix("/v1"), timeout=10) as client:
        head = client.head("/v1/models")
        assert head.status_code == 405 and head.content == b""
        after = client.get("/v1/models")  # the same kept-alive connection
    assert after.status_code == 200 and after.json()["data"]
