"""Our remote backend against a server no one here wrote: llama-cpp-python's OpenAI-compatible server on
loopback, serving the embedded model's GGUF.

Needs the cached build from ``bash scripts/llama_cpp_env.sh`` (it compiles llama.cpp, ~12 min) and the embedded
GGUF (``scripts/setup.sh`` fetches it); skipped with the reason when either is missing. Run them alone with
``.venv/bin/python -m pytest -m llama_cpp``.
"""

from __future__ import annotations

import socket
import subprocess
import time

import httpx
import pytest

from playground.domain.text import FinishReason, GenerationRequest
from playground.remote.backend import generate_remote, list_remote_models, load_remote_model
from tests.llama_cpp_env import embedded_gguf, llama_python
from tests.remote.conftest import add_endpoint
from tests.remote.peers import CancelAfter

pytestmark = pytest.mark.llama_cpp

ALIAS = "smollm2"
PROMPT = "The capital of France is"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_url(tmp_path_factory: pytest.TempPathFactory):
    python, gguf = llama_python(), embedded_gguf()
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(python), "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", ALIAS, "--host",
             "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--logits_all", "true",
             # One thread: OpenMP's spinning threads crawl when the 2 cores are busy with anything else.
             "--n_threads", "1", "--n_threads_batch", "1"],
            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start in 90 s:\n{log.read_text()[-2000:]}")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def llama_model(llama_url) -> str:
    return add_endpoint("llama", llama_url, ALIAS, timeout_s=60)


def test_its_models_reach_our_picker_listing(llama_url, llama_model) -> None:
    assert list_remote_models() == {"llama": [f"remote:llama/{ALIAS}"]}
    assert load_remote_model(llama_model).model_name == ALIAS


def test_completion_with_logprobs_and_top_alternatives(llama_model) -> None:
    rm = load_remote_model(llama_model)
    events = []
    result = generate_remote(rm, GenerationRequest(prompt=PROMPT, max_new_tokens=6, temperature=0, top_logprobs=3),
                             events.append)
    c = result.first
    assert c.text and c.finish_reason in (FinishReason.LENGTH, FinishReason.STOP)
    assert events == list(c.tokens) and "".join(t.text for t in c.tokens) == c.text
    for t in c.tokens:
        assert t.logprob is not None and t.logprob <= 0
        assert 1 <= len(t.top) <= 3
        assert [a.logprob for a in t.top] == sorted((a.logprob for a in t.top), reverse=True)
        # Not "the chosen token is top[0]": llama.cpp samples after its default repeat_penalty 1.1, while the
        # logprobs are the model's own distribution.
        assert t.logprob <= t.top[0].logprob + 1e-4
    sent = GenerationRequest(prompt=PROMPT, max_new_tokens=6, temperature=0, top_logprobs=3)
    assert generate_remote(rm, sent).first.text == c.text  # greedy is reproducible over the wire


def test_chat_with_logprobs(llama_model) -> None:
    rm = load_remote_model(llama_model)
    request = GenerationRequest(prompt="", messages=({"role": "user", "content": "What is the capital of France?"},),
                                max_new_tokens=6, temperature=0, top_logprobs=2)
    events = []
    result = generate_remote(rm, request, events.append)
    assert result.chat and result.first.text and events == list(result.first.tokens)
    tokens = [t for t in result.first.tokens if t.text]
    assert tokens and all(t.logprob is not None and 1 <= len(t.top) <= 2 for t in tokens)


def test_stream_cancel_keeps_the_partial_text_and_the_server_serves_on(llama_model) -> None:
    rm = load_remote_model(llama_model)
    on_event = CancelAfter(3)
    cancel, seen = on_event.cancel, on_event.seen

    started = time.perf_counter()
    result = generate_remote(rm, GenerationRequest(prompt="Once upon a time", max_new_tokens=400, temperature=0.8,
                                                   seed=1), on_event, cancel)
    assert time.perf_counter() - started < 30
    assert result.first.finish_reason == FinishReason.CANCELLED
    assert 3 <= len(result.first.tokens) < 400 and result.first.text.startswith("".join(e.text for e in seen[:3]))
    again = generate_remote(rm, GenerationRequest(prompt=PROMPT, max_new_tokens=2, temperature=0))
    assert again.first.tokens


def test_sheet_fill_with_confidences(llama_model) -> None:
    from playground.runtime.dispatch import load_model, sheet_filler
    from playground.tasks.sheet import Sheet, fill_prompts

    sheet = Sheet(["Country", "Capital"], [["Italy", "Rome"], ["France", "Paris"], ["Japan", "Tokyo"],
                                           ["Germany", ""]])
    result = sheet_filler(load_model(llama_model), batch_size=8, max_new_tokens=6).fill(fill_prompts(sheet))
    (answer,) = result.answers
    assert answer.value == "Berlin"
    assert answer.confidence is not None and 0.5 < answer.confidence <= 1
    assert answer.top and answer.top[0].text == "Berlin"
