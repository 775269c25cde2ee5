"""Our own remote client against our own ``serve``: scoring by echo, constrained output, token prompts, penalties and
a tool call round trip travel over the wire and give what the engine gives locally."""

from __future__ import annotations

import json

import jsonschema
import pytest

from playground.domain.score import ScoreItem
from playground.domain.text import Constraint, GenerationRequest
from playground.engine.generate import generate
from playground.engine.score import score_batch
from playground.remote.backend import generate_remote, load_remote_model, score_remote
from tests.remote.test_serve_features import PROMPT, SCHEMAS, WEATHER


@pytest.fixture
def rm(remote_model_id):
    return load_remote_model(remote_model_id)


def test_scoring_over_the_wire_is_the_engines(rm, long_tiny_model) -> None:
    items = [ScoreItem(PROMPT), ScoreItem("Hello there"), ScoreItem(ids=(10, 20, 30))]
    remote = score_remote(rm, items, top_logprobs=2)
    local = score_batch(long_tiny_model, items, top_logprobs=2)
    for r, ref in zip(remote, local, strict=True):
        assert [t.text for t in r.tokens] == [t.text for t in ref.tokens]
        assert r.tokens[0].logprob is None
        assert [t.logprob for t in r.tokens[1:]] == pytest.approx([t.logprob for t in ref.tokens[1:]], abs=1e-5)
        assert [t.greedy for t in r.tokens[1:]] == [t.greedy for t in ref.tokens[1:]]


@pytest.mark.parametrize("schema", SCHEMAS[:2])
def test_constrained_output_over_the_wire(rm, schema) -> None:
    req = GenerationRequest(prompt="JSON:", max_new_tokens=120, temperature=1.0, seed=5,
                            constraint=Constraint("json_schema", json.dumps(schema)))
    jsonschema.validate(json.loads(generate_remote(rm, req).first.text), schema)
    choice = GenerationRequest(prompt="Pick:", max_new_tokens=8, temperature=1.0, seed=6,
                               constraint=Constraint("choice", '["alpha", "beta"]'))
    assert generate_remote(rm, choice).first.text in ("alpha", "beta")


def test_token_prompts_and_penalties_over_the_wire(rm, long_tiny_model) -> None:
    ids = tuple(long_tiny_model.tokenizer(PROMPT)["input_ids"])
    req = GenerationRequest(prompt="", prompt_ids=ids, max_new_tokens=6, temperature=0, presence_penalty=1.5,
                            frequency_penalty=0.5, logit_bias=((ids[0], 3.0),))
    assert generate_remote(rm, req).first.text == generate(long_tiny_model, req).first.text


def test_tool_call_round_trip_with_our_client(rm) -> None:
    body = {"model": rm.model_name, "messages": [{"role": "user", "content": "Weather in Oslo?"}],
            "tools": [WEATHER], "tool_choice": "required", "max_tokens": 200, "temperature": 1.0, "seed": 7}
    reply = rm.client.post_json("/chat/completions", body)
    message = reply["choices"][0]["message"]
    assert reply["choices"][0]["finish_reason"] == "tool_calls"
    call = message["tool_calls"][0]
    jsonschema.validate(json.loads(call["function"]["arguments"]), WEATHER["function"]["parameters"])
    body["messages"] += [message, {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]
    body.update(tool_choice="auto", max_tokens=4, temperature=0)
    again = rm.client.post_json("/chat/completions", body)
    assert again["choices"][0]["finish_reason"] in ("stop", "length", "tool_calls")
