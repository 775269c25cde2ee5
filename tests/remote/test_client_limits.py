"""Our remote client against servers that misbehave on purpose (issue 15, items 19, 22, 23): a stream that never
ends, a server dripping one byte at a time, a 100 MB "token", a key put in the URL's query string."""

from __future__ import annotations

import json
import time

import pytest

from playground.domain.text import FinishReason, GenerationRequest
from playground.errors import KnownError, RemoteDeadline, RemoteProtocolError
from playground.models.endpoints import Endpoint, EndpointStore
from playground.remote.backend import generate_remote, load_remote_model
from tests.remote.conftest import add_endpoint
from tests.remote.peers import Peer, completion_chunk


def _endless(handler, body) -> None:  # noqa: ANN001
    handler.start_sse()
    for i in range(10_000):  # never says [DONE] on its own, whatever max_tokens said
        handler.sse(completion_chunk(f" w{i}"))
        handler.wait(0.001)
        if handler.server.peer.stopping.is_set():
            return


def test_a_stream_past_max_tokens_is_cut_at_max_tokens() -> None:
    with Peer({("POST", "/v1/completions"): _endless}) as peer:
        model_id = add_endpoint("endless", peer.url, "m")
        rm = load_remote_model(model_id, check=False)
        result = generate_remote(rm, GenerationRequest(prompt="x", max_new_tokens=8, temperature=0))
    assert len(result.first.tokens) == 8  # before: 67+ tokens with 8 asked
    assert result.first.text == "".join(f" w{i}" for i in range(8))
    assert result.first.finish_reason == FinishReason.LENGTH


def test_a_dripping_server_hits_the_overall_deadline_and_the_text_is_kept() -> None:
    def drip(handler, body) -> None:  # noqa: ANN001
        handler.start_sse()
        handler.sse(completion_chunk(" first"))
        line = "data: " + json.dumps(completion_chunk(" never")) + "\n\n"
        for ch in line:  # one byte every 0.2 s: well within the read timeout, forever
            handler.wfile.write(ch.encode())
            handler.wfile.flush()
            handler.wait(0.2)

    with Peer({("POST", "/v1/completions"): drip}) as peer:
        model_id = add_endpoint("drip", peer.url, "m", timeout_s=1.0)
        rm = load_remote_model(model_id, check=False)
        started = time.perf_counter()
        with pytest.raises(RemoteDeadline, match=r"did not finish within 4 s") as err:
            generate_remote(rm, GenerationRequest(prompt="x", max_new_tokens=1, temperature=0))
    assert time.perf_counter() - started < 7  # 2 x 1 s read timeout + 2 s for the one token asked
    assert err.value.partial.first.text == " first"  # what arrived is kept


def test_a_huge_token_is_refused_without_reading_it_all() -> None:
    def huge(handler, body) -> None:  # noqa: ANN001
        handler.start_sse()
        handler.wfile.write(b'data: {"choices": [{"index": 0, "text": "')
        block = b"x" * 2**20
        for _ in range(100):  # 100 MB in one line
            try:
                handler.wfile.write(block)
            except OSError:
                return

    with Peer({("POST", "/v1/completions"): huge}) as peer:
        model_id = add_endpoint("huge", peer.url, "m")
        rm = load_remote_model(model_id, check=False)
        with pytest.raises(RemoteProtocolError, match="over 4 MB"):
            generate_remote(rm, GenerationRequest(prompt="x", max_new_tokens=4, temperature=0))


@pytest.mark.parametrize("url", ["http://h:8000/v1?api_key=sk-secret-1", "http://h/v1?access_token=sk-secret-1",
                                 "http://h/v1?x=1&Key=sk-secret-1"])
def test_a_key_in_the_query_string_is_refused_like_user_key_at(url: str) -> None:
    with pytest.raises(KnownError, match="not in the URL"):
        EndpointStore().save(Endpoint("q", url))
    assert "sk-secret" not in json.dumps([e.as_dict() for e in EndpointStore().list()])
    EndpointStore().save(Endpoint("azure", "http://h/v1?api-version=2024-06-01"))  # harmless parameters stay
    assert EndpointStore().get("azure").base_url.endswith("?api-version=2024-06-01")


def test_an_old_endpoints_file_with_a_key_in_the_query_never_shows_it(data_home) -> None:
    (data_home / "endpoints.json").write_text(json.dumps({"endpoints": [
        {"name": "old", "base_url": "http://h/v1?api_key=sk-secret-2", "model": "", "timeout_s": 30}]}))
    assert EndpointStore().get("old").base_url == "http://h/v1"
