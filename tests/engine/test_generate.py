"""The generation loop on a tiny random llama built in-process: fast, real model code."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from playground.domain.jobs import Cancel
from playground.domain.text import FinishReason, GenerationRequest
from playground.engine.generate import generate
from playground.errors import ContextOverflow, ParameterError

PROMPT = "The quick brown fox"


def greedy(**kw) -> GenerationRequest:
    return GenerationRequest(prompt=PROMPT, temperature=0, max_new_tokens=kw.pop("max_new_tokens", 40), **kw)


def test_tokens_stream_in_order_and_spell_the_result(tiny_model):
    events = []
    result = generate(tiny_model, greedy(), on_event=events.append)
    completion = result.first
    assert len(events) == len(completion.tokens) > 0
    assert [e.index for e in events] == list(range(len(events)))
    assert "".join(e.text for e in events) == completion.text
    assert all(len(e.top) == 5 for e in events)


def test_logprobs_match_a_separate_forward_pass(tiny_model):
    result = generate(tiny_model, greedy(max_new_tokens=20))
    prompt_ids = tiny_model.tokenizer(PROMPT)["input_ids"]
    gen_ids = [t.token_id for t in result.first.tokens]
    with torch.inference_mode():
        logits = tiny_model.model(torch.tensor([prompt_ids + gen_ids], device=tiny_model.device)).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    for i, tok in enumerate(result.first.tokens):
        expected = logprobs[len(prompt_ids) - 1 + i]
        assert tok.logprob == pytest.approx(float(expected[tok.token_id]), abs=1e-4)
        # Greedy picks the most likely token, which heads the alternatives.
        assert tok.top[0].token_id == tok.token_id == int(expected.argmax())
        assert [a.logprob for a in tok.top] == sorted((a.logprob for a in tok.top), reverse=True)


def test_greedy_is_deterministic(tiny_model):
    assert generate(tiny_model, greedy()).first.text == generate(tiny_model, greedy()).first.text


def test_same_seed_same_text_other_seed_other_text(tiny_model):
    req = GenerationRequest(prompt=PROMPT, temperature=1.0, max_new_tokens=30, seed=7)
    a = generate(tiny_model, req).first
    b = generate(tiny_model, req).first
    c = generate(tiny_model, dataclasses.replace(req, seed=8)).first
    assert a.text == b.text
    assert [t.token_id for t in a.tokens] != [t.token_id for t in c.tokens]


def test_random_seed_is_reported_and_reproduces(tiny_model):
    req = GenerationRequest(prompt=PROMPT, temperature=1.0, max_new_tokens=20)
    first = generate(tiny_model, req)
    again = generate(tiny_model, dataclasses.replace(req, seed=first.seed))
    assert again.first.text == first.first.text


def test_stop_sequence_ends_the_text_without_the_stop(tiny_model):
    full = generate(tiny_model, greedy(max_new_tokens=60)).first.text
    stop = full[20:23]
    expected = full[: full.find(stop)]
    events = []
    result = generate(tiny_model, greedy(max_new_tokens=60, stop=(stop,)), on_event=events.append).first
    assert result.finish_reason == FinishReason.STOP
    assert result.text == expected
    assert "".join(e.text for e in events) == expected


def test_cancel_within_one_token_keeps_partial_text(tiny_model):
    cancel = Cancel()
    events = []

    def on_event(event):
        events.append(event)
        if len(events) == 3:
            cancel.set()

    result = generate(tiny_model, greedy(max_new_tokens=50), on_event=on_event, cancel=cancel).first
    assert result.finish_reason == FinishReason.CANCELLED
    assert len(result.tokens) == 3
    assert result.text == "".join(e.text for e in events)
    assert [t.token_id for t in result.tokens] == [e.token_id for e in events]


def test_prompt_longer_than_context_gives_a_clear_message(tiny_model):
    with pytest.raises(ContextOverflow, match=r"reads at most 96"):
        generate(tiny_model, GenerationRequest(prompt="x" * 200))


def test_generation_stops_at_the_context_window(tiny_model):
    prompt = "y" * 80  # 80 tokens of a 96-token window
    result = generate(tiny_model, GenerationRequest(prompt=prompt, temperature=0, max_new_tokens=50)).first
    assert result.finish_reason == FinishReason.LENGTH
    assert 0 < len(result.tokens) <= 16


def test_n_completions_match_single_runs_with_successive_seeds(tiny_model):
    req = GenerationRequest(prompt=PROMPT, temperature=1.0, max_new_tokens=15, seed=11, n=3)
    events = []
    result = generate(tiny_model, req, on_event=events.append)
    assert [c.text for c in result.completions] == [
        generate(tiny_model, dataclasses.replace(req, n=1, seed=11 + i)).first.text for i in range(3)]
    assert sorted({e.completion for e in events}) == [0, 1, 2]


def test_top_k_one_and_tiny_top_p_sample_the_argmax(tiny_model):
    reference = generate(tiny_model, greedy(max_new_tokens=20)).first.text
    for kw in ({"top_k": 1}, {"top_p": 1e-6}):
        req = GenerationRequest(prompt=PROMPT, temperature=1.5, max_new_tokens=20, seed=3, **kw)
        assert generate(tiny_model, req).first.text == reference


def test_source_text_comes_directly_before_the_prompt(tiny_model):
    split = generate(tiny_model, GenerationRequest(source="The quick ", prompt="brown fox", temperature=0,
                                                  max_new_tokens=20)).first.text
    assert split == generate(tiny_model, greedy(max_new_tokens=20)).first.text


def test_timings_are_reported(tiny_model):
    t = generate(tiny_model, greedy(max_new_tokens=30)).first.timings
    assert t.ttft_s > 0 and t.tokens_per_s > 0 and t.load_s > 0


def test_bad_parameters_are_refused(tiny_model):
    with pytest.raises(ParameterError, match="top-p"):
        generate(tiny_model, GenerationRequest(prompt="a", top_p=0))


REFUSING_TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'system' %}"
                     "{{ raise_exception('System role not supported') }}{% endif %}"
                     "{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                     "{% if add_generation_prompt %}assistant:{% endif %}")


def test_a_chat_template_that_refuses_the_messages_says_so_as_the_request_s_problem(tiny_model, monkeypatch):
    """Many models' templates raise on a system message (or on roles that do not alternate): the template's own
    sentence comes back as a ParameterError (serve answers 400), not as an internal error; messages it takes run."""
    monkeypatch.setattr(tiny_model.tokenizer, "chat_template", REFUSING_TEMPLATE)
    system = ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"})
    with pytest.raises(ParameterError, match="chat template refused these messages: System role not supported"):
        generate(tiny_model, greedy(messages=system, max_new_tokens=3))
    ok = generate(tiny_model, greedy(messages=system[1:], max_new_tokens=3))
    assert ok.completions[0].tokens
