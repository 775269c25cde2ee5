"""Our remote backend against our own ``serve`` (both sides real), and against small peers for the failures a
real server does not produce on demand."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from playground.domain.jobs import Cancel
from playground.domain.text import FinishReason, GenerationRequest
from playground.engine.generate import generate
from playground.errors import (
    RemoteAuthError,
    RemoteNotFound,
    RemoteProtocolError,
    RemoteRateLimited,
    RemoteServerError,
    RemoteTimeout,
    RemoteUnreachable,
)
from playground.remote.backend import generate_remote, load_remote_model
from playground.remote.client import RemoteClient
from tests.remote.conftest import add_endpoint, env_without_keyring
from tests.remote.peers import CancelAfter, Peer, completion_chunk

PROMPT = "Country: France\nCapital:"


def test_completion_matches_the_local_engine(remote_model_id, long_tiny_model) -> None:
    rm = load_remote_model(remote_model_id)
    request = GenerationRequest(prompt=PROMPT, source="Country: Italy\nCapital: Rome\n", max_new_tokens=10,
                                temperature=0, top_logprobs=3)
    events = []
    remote = generate_remote(rm, request, events.append)
    local = generate(long_tiny_model, request).first
    got = remote.first
    assert got.text == local.text
    assert got.finish_reason == local.finish_reason == FinishReason.LENGTH
    assert [t.text for t in got.tokens] == [t.text for t in local.tokens]
    assert [t.logprob for t in got.tokens] == pytest.approx([t.logprob for t in local.tokens], abs=1e-5)
    for r, lo in zip(got.tokens, local.tokens, strict=True):  # top alternatives: same order, same values
        assert [a.logprob for a in r.top][:1] == pytest.approx([a.logprob for a in lo.top][:1], abs=1e-5)
        assert r.top[0].text == lo.top[0].text
    assert events == list(got.tokens)  # streamed as they came
    assert remote.model == remote_model_id and remote.device == "remote (ours)"
    assert got.timings.ttft_s > 0


def test_stop_sequence_and_n(remote_model_id, long_tiny_model) -> None:
    rm = load_remote_model(remote_model_id)
    base = generate(long_tiny_model, GenerationRequest(prompt=PROMPT, max_new_tokens=12, temperature=0)).first.text
    stop = next(ch for ch in base[2:] if ch.strip())  # a character the greedy text reaches after its start
    request = GenerationRequest(prompt=PROMPT, max_new_tokens=12, temperature=0, stop=(stop,), n=2)
    expected = generate(long_tiny_model, request).first
    result = generate_remote(rm, request)
    assert len(result.completions) == 2
    for c in result.completions:
        assert c.text == expected.text == base[:base.index(stop)]
        assert c.finish_reason == expected.finish_reason == FinishReason.STOP


def test_chat_goes_to_the_chat_endpoint(remote_model_id, served) -> None:
    rm = load_remote_model(remote_model_id)
    request = GenerationRequest(prompt="ignored", messages=({"role": "user", "content": "Hello"},),
                                max_new_tokens=5, temperature=0)
    result = generate_remote(rm, request)
    assert result.chat and len(result.first.tokens) == 5
    assert all(t.logprob is not None and t.top for t in result.first.tokens)


def test_cancel_mid_stream_closes_it_and_the_server_stops(remote_model_id, served) -> None:
    rm = load_remote_model(remote_model_id)
    on_event = CancelAfter(3)
    cancel = on_event.cancel

    request = GenerationRequest(prompt=PROMPT, max_new_tokens=3500, temperature=0)
    started = time.perf_counter()
    result = generate_remote(rm, request, on_event, cancel)
    assert time.perf_counter() - started < 5
    assert result.first.finish_reason == FinishReason.CANCELLED
    assert 3 <= len(result.first.tokens) < 3500  # the partial text is kept
    assert result.first.text == "".join(t.text for t in result.first.tokens)
    deadline = time.monotonic() + 10  # the server notices the disconnect and cancels its generation
    while time.monotonic() < deadline:
        if any(r.first.finish_reason == FinishReason.CANCELLED for r in served.app.finished):
            break
        time.sleep(0.05)
    cancelled = [r for r in served.app.finished if r.first.finish_reason == FinishReason.CANCELLED]
    assert cancelled and len(cancelled[-1].first.tokens) < 3500


def test_wrong_key_and_unknown_model(served_with_key) -> None:
    wrong = add_endpoint("locked", served_with_key.url, served_with_key.model_id, api_key="sk-wrong-key-999")
    with pytest.raises(RemoteAuthError, match="refused the API key") as err:
        load_remote_model(wrong)
    assert "sk-wrong-key-999" not in str(err.value)
    right = add_endpoint("open", served_with_key.url, served_with_key.model_id, api_key=served_with_key.api_key)
    rm = load_remote_model(right)
    assert "sk-test" not in repr(rm.client)
    assert generate_remote(rm, GenerationRequest(prompt="a", max_new_tokens=2, temperature=0)).first.tokens
    with pytest.raises(RemoteNotFound, match="no such model 'nope'"):
        load_remote_model(add_endpoint("open", served_with_key.url, "nope", api_key=served_with_key.api_key))


def test_server_killed_mid_stream_is_a_clear_truncation(long_tiny_dir, tmp_path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "serve", "--model", str(long_tiny_dir), "--port", "0", "--device",
         "cpu", "--dtype", "float32", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env_without_keyring())
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        rm = load_remote_model(add_endpoint("doomed", url, long_tiny_dir.name))
        seen = []

        def on_event(event) -> None:  # noqa: ANN001
            seen.append(event)
            if len(seen) == 2:
                os.kill(proc.pid, signal.SIGKILL)

        with pytest.raises(RemoteProtocolError, match="truncated") as err:
            generate_remote(rm, GenerationRequest(prompt=PROMPT, max_new_tokens=3500, temperature=0), on_event)
        partial = err.value.partial
        assert partial is not None and partial.first.text.startswith("".join(e.text for e in seen[:2]))
    finally:
        proc.kill()
        proc.wait(10)


def test_slow_server_hits_the_read_timeout() -> None:
    def stall(handler, body) -> None:  # noqa: ANN001
        handler.wait(10)  # accepts the request, never answers

    with Peer({("POST", "/v1/completions"): stall}) as peer:
        client = RemoteClient(peer.url, name="slow", read_timeout=0.3)
        started = time.perf_counter()
        with pytest.raises(RemoteTimeout, match=r"slow: no answer .* within 0.3 s"):
            list(client.stream("/completions", {"model": "m", "prompt": "x"}))
        assert time.perf_counter() - started < 3
        assert len(peer.requests) == 1  # a read timeout is not retried: the server may be generating


def test_unreachable_server_is_retried_with_backoff_then_reported() -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = RemoteClient(f"http://127.0.0.1:{port}/v1", name="gone", retries=2, backoff_s=0.05)
    started = time.perf_counter()
    with pytest.raises(RemoteUnreachable, match=r"gone: cannot connect .*3 tries"):
        client.list_models()
    assert time.perf_counter() - started >= 0.15  # waited 0.05 + 0.1 between the tries


def test_missing_logprobs_are_none_not_made_up() -> None:
    def plain(handler, body) -> None:  # noqa: ANN001 - TGI-like: text only
        handler.start_sse()
        for piece in ("Par", "is"):
            handler.sse(completion_chunk(piece))
        handler.sse(completion_chunk("", finish="stop"))
        handler.sse("[DONE]")

    with Peer({("GET", "/v1/models"): lambda h, b: h.send_json(200, {"data": [{"id": "m"}]}),
               ("POST", "/v1/completions"): plain}) as peer:
        rm = load_remote_model(add_endpoint("plain", peer.url, "m"))
        result = generate_remote(rm, GenerationRequest(prompt="Capital of France:", max_new_tokens=5))
    c = result.first
    assert c.text == "Paris" and c.finish_reason == FinishReason.STOP
    assert [t.logprob for t in c.tokens] == [None, None]
    assert result.to_json()["tokens"][0] == {"text": "Par", "logprob": None, "top": []}
    sent = peer.requests[-1][3]
    assert sent["logprobs"] == 5 and sent["prompt"] == "Capital of France:" and sent["stream"] is True


def test_logprob_fields_of_the_wrong_type_are_ignored_not_a_crash() -> None:
    """Found by the remote-stream fuzz test: a number where a list belongs raised TypeError inside generate."""
    odd = [{"tokens": 5, "token_logprobs": 0.5, "top_logprobs": 7}, {"tokens": ["is"], "token_logprobs": ["inf"]},
           {"tokens": [None], "token_logprobs": [-0.1], "top_logprobs": [[1]]}]

    def weird(handler, body) -> None:  # noqa: ANN001
        handler.start_sse()
        for piece, lp in zip(("Par", "is", ""), odd, strict=True):
            handler.sse(completion_chunk(piece, lp))
        handler.sse(completion_chunk("", finish="stop"))
        handler.sse("[DONE]")

    with Peer({("GET", "/v1/models"): lambda h, b: h.send_json(200, {"data": [{"id": "m"}]}),
               ("POST", "/v1/completions"): weird}) as peer:
        rm = load_remote_model(add_endpoint("weird", peer.url, "m"))
        c = generate_remote(rm, GenerationRequest(prompt="Capital of France:", max_new_tokens=5)).first
    assert c.text == "Paris" and [t.logprob for t in c.tokens][:2] == [None, None]  # 5 and "inf": no numbers


@pytest.mark.parametrize(("status", "headers", "error", "match"), [
    (429, {"Retry-After": "7"}, RemoteRateLimited, "rate limited .*retry after 7 s"),
    (503, {}, RemoteServerError, r"server error \(503: overloaded; key \*\*\*\)"),
    (401, {}, RemoteAuthError, "refused the API key"),
])
def test_http_failures_have_one_clear_line(status, headers, error, match) -> None:  # noqa: ANN001
    with Peer({("POST", "/v1/completions"): lambda h, b: h.send_json(
            status, {"error": {"message": "overloaded; key sk-echoed-secret"}}, headers)}) as peer:
        client = RemoteClient(peer.url, api_key="sk-echoed-secret", name="peer")
        with pytest.raises(error, match=match) as err:
            list(client.stream("/completions", {"model": "m", "prompt": "x"}))
    assert "sk-echoed-secret" not in str(err.value)
    if status == 429:
        assert err.value.retry_after == 7


def test_malformed_and_truncated_streams() -> None:
    def garbage(handler, body) -> None:  # noqa: ANN001
        handler.start_sse()
        handler.sse("{not json")

    def cut(handler, body) -> None:  # noqa: ANN001
        handler.start_sse()
        handler.sse(completion_chunk("Par"))  # then the connection closes without [DONE]

    with Peer({("POST", "/v1/completions"): garbage, ("POST", "/v1/chat/completions"): cut}) as peer:
        client = RemoteClient(peer.url, name="peer")
        with pytest.raises(RemoteProtocolError, match="malformed JSON"):
            list(client.stream("/completions", {}))
        with pytest.raises(RemoteProtocolError, match=r"ended before \[DONE\] \(truncated"):
            list(client.stream("/chat/completions", {}))


def test_cancel_before_the_first_byte_returns_at_once() -> None:
    def stall(handler, body) -> None:  # noqa: ANN001
        handler.wait(10)

    with Peer({("POST", "/v1/completions"): stall}) as peer:
        client = RemoteClient(peer.url, name="slow", read_timeout=30)
        cancel = Cancel()
        threading.Timer(0.2, cancel.set).start()
        started = time.perf_counter()
        assert list(client.stream("/completions", {"model": "m", "prompt": "x"}, cancel)) == []
        assert time.perf_counter() - started < 2


def test_tokens_that_do_not_spell_the_text_become_one_piece() -> None:
    lp = {"tokens": ["bytes:\\xc3", "bytes:\\xa9"], "token_logprobs": [-0.5, -0.25], "top_logprobs": None}

    def bytes_tokens(handler, body) -> None:  # noqa: ANN001
        handler.start_sse()
        handler.sse(completion_chunk("é", lp))
        handler.sse(completion_chunk("", finish="length"))
        handler.sse("[DONE]")

    with Peer({("GET", "/v1/models"): lambda h, b: h.send_json(200, {"data": [{"id": "m"}]}),
               ("POST", "/v1/completions"): bytes_tokens}) as peer:
        rm = load_remote_model(add_endpoint("bytes", peer.url, "m"))
        c = generate_remote(rm, GenerationRequest(prompt="x", max_new_tokens=2)).first
    assert [(t.text, t.logprob) for t in c.tokens] == [("é", -0.75)]
    assert math.exp(c.tokens[0].logprob) == pytest.approx(math.exp(-0.5) * math.exp(-0.25))


def test_tls_is_verified(tmp_path) -> None:
    """A self-signed HTTPS server is refused (no way to turn verification off), with a line that says why."""
    import datetime
    import ssl

    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    with Peer({("GET", "/v1/models"): lambda h, b: h.send_json(200, {"data": [{"id": "m"}]})}, tls=context) as peer:
        client = RemoteClient(peer.url, name="selfsigned", retries=3)
        started = time.perf_counter()
        with pytest.raises(RemoteUnreachable, match="TLS certificate .* could not be verified"):
            client.list_models()
        assert time.perf_counter() - started < 2  # a certificate failure is not retried
