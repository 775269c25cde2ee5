"""Our ``playground serve`` against the official ``openai`` client: a peer we did not write."""

from __future__ import annotations

import math

import openai
import pytest

from playground.domain.text import GenerationRequest
from playground.engine.generate import generate

PROMPT = "Country: France\nCapital:"


@pytest.fixture
def client(served):
    with openai.OpenAI(base_url=served.url, api_key="unused", max_retries=0, timeout=30) as c:
        yield c


def test_lists_the_served_model(client, served) -> None:
    assert [m.id for m in client.models.list()] == [served.model_id]
    assert client.models.retrieve(served.model_id).owned_by == "playground"


def test_completion_logprobs_are_the_local_engines(client, served, long_tiny_model) -> None:
    reply = client.completions.create(model=served.model_id, prompt=PROMPT, max_tokens=8, temperature=0,
                                      logprobs=3)
    local = generate(long_tiny_model, GenerationRequest(prompt=PROMPT, max_new_tokens=8, temperature=0,
                                                        top_logprobs=3)).first
    choice = reply.choices[0]
    assert choice.text == local.text
    assert choice.finish_reason == "length"
    assert choice.logprobs.tokens == [t.text for t in local.tokens]
    assert choice.logprobs.token_logprobs == pytest.approx([t.logprob for t in local.tokens], abs=1e-5)
    for top, token in zip(choice.logprobs.top_logprobs, local.tokens, strict=True):
        best = token.top[0]
        assert top[best.text] == pytest.approx(best.logprob, abs=1e-5)
    assert reply.usage.completion_tokens == 8 and reply.usage.prompt_tokens > 0


def test_stream_gives_the_same_text(client, served) -> None:
    whole = client.completions.create(model=served.model_id, prompt=PROMPT, max_tokens=12, temperature=0)
    chunks = list(client.completions.create(model=served.model_id, prompt=PROMPT, max_tokens=12, temperature=0,
                                            logprobs=1, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"
    token_chunks = [c for c in chunks if c.choices[0].logprobs]
    assert len(token_chunks) == 12
    assert all(math.isfinite(c.choices[0].logprobs.token_logprobs[0]) for c in token_chunks)


def test_chat_with_logprobs_and_stream(client, served) -> None:
    messages = [{"role": "user", "content": "Say hi"}]
    reply = client.chat.completions.create(model=served.model_id, messages=messages, max_tokens=6, temperature=0,
                                           logprobs=True, top_logprobs=2)
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert len(choice.logprobs.content) == 6
    assert all(len(t.top_logprobs) == 2 for t in choice.logprobs.content)
    assert "".join(t.token for t in choice.logprobs.content) == choice.message.content
    streamed = client.chat.completions.create(model=served.model_id, messages=messages, max_tokens=6,
                                              temperature=0, stream=True, stream_options={"include_usage": True})
    chunks = list(streamed)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content
    assert chunks[-1].usage.completion_tokens == 6


def test_openai_style_errors(client, served, served_with_key) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.completions.create(model="no-such-model", prompt="x", max_tokens=1)
    assert err.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model=served.model_id, prompt="x", max_tokens=1, temperature=5)
    assert err.value.param == "temperature"
    with openai.OpenAI(base_url=served_with_key.url, api_key="wrong", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
    with openai.OpenAI(base_url=served_with_key.url, api_key=served_with_key.api_key, max_retries=0) as right:
        assert [m.id for m in right.models.list()] == [served_with_key.model_id]


def test_serve_cli_says_when_the_port_is_taken_or_the_model_missing(long_tiny_dir, capsys) -> None:
    import socket

    from playground.cli import main as cli
    from playground.remote.serve_app import is_loopback

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["serve", "--model", str(long_tiny_dir), "--port", str(port), "--device", "cpu"]) == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert cli.main(["serve", "--model", str(long_tiny_dir / "missing"), "--port", "0"]) == 1  # no hang
    assert "error: Unknown model" in capsys.readouterr().err
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")
