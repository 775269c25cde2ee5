"""What real clients send past the basics (issue 18), with the official ``openai`` client against our ``serve``:
prompt scoring by echo, batches of prompts, structured output, tools, penalties, CORS, /health."""

from __future__ import annotations

import json

import httpx
import jsonschema
import openai
import pytest

from playground.domain.score import ScoreItem
from playground.domain.text import GenerationRequest
from playground.engine.generate import generate
from playground.engine.score import score, score_batch

PROMPT = "Country: France\nCapital:"


@pytest.fixture
def client(served):
    with openai.OpenAI(base_url=served.url, api_key="unused", max_retries=0, timeout=60) as c:
        yield c


def test_echo_with_logprobs_is_the_engines_own_scoring(client, served, long_tiny_model) -> None:
    reply = client.completions.create(model=served.model_id, prompt=PROMPT, echo=True, logprobs=3, max_tokens=0)
    local = score(long_tiny_model, PROMPT, top_logprobs=3)
    choice = reply.choices[0]
    assert choice.text == PROMPT
    assert choice.logprobs.tokens == [t.text for t in local.tokens]
    assert choice.logprobs.token_logprobs[0] is None  # nothing before the first token
    assert choice.logprobs.token_logprobs[1:] == pytest.approx([t.logprob for t in local.tokens[1:]], abs=1e-5)
    for top, token in zip(choice.logprobs.top_logprobs[1:], local.tokens[1:], strict=True):
        assert top[token.top[0].text] == pytest.approx(token.top[0].logprob, abs=1e-5)
    assert reply.usage.prompt_tokens == local.prompt_tokens and reply.usage.completion_tokens == 0
    # With a token generated after the echo: the prompt's logprobs, then the completion's, one text.
    more = client.completions.create(model=served.model_id, prompt=PROMPT, echo=True, logprobs=1, max_tokens=2,
                                     temperature=0)
    generated = generate(long_tiny_model, GenerationRequest(prompt=PROMPT, max_new_tokens=2, temperature=0)).first
    assert more.choices[0].text == PROMPT + generated.text
    assert len(more.choices[0].logprobs.tokens) == len(local.tokens) + 2
    assert more.choices[0].logprobs.token_logprobs[-2:] == pytest.approx([t.logprob for t in generated.tokens],
                                                                          abs=1e-5)


def test_a_continuation_scores_the_same_through_echo(client, served, long_tiny_model) -> None:
    local = score(long_tiny_model, PROMPT, " Paris")
    reply = client.completions.create(model=served.model_id, prompt=PROMPT + " Paris", echo=True, logprobs=0,
                                      max_tokens=0)
    # The joint text tokenizes the same way here (a byte tokenizer), so the sums agree.
    echoed = reply.choices[0].logprobs.token_logprobs[-len(local.continuation):]
    assert sum(echoed) == pytest.approx(local.continuation_logprob, abs=1e-5)


def test_lists_of_prompts_give_one_choice_each_in_order(client, served, long_tiny_model) -> None:
    prompts = ["Country: Spain\nCapital:", "Hello", PROMPT]
    reply = client.completions.create(model=served.model_id, prompt=prompts, max_tokens=4, temperature=0, n=2)
    assert [c.index for c in reply.choices] == list(range(6))
    for p, prompt in enumerate(prompts):
        expected = generate(long_tiny_model, GenerationRequest(prompt=prompt, max_new_tokens=4, temperature=0)).first
        assert [reply.choices[2 * p + i].text for i in range(2)] == [expected.text] * 2
    ids = [long_tiny_model.tokenizer(p)["input_ids"] for p in prompts]
    by_ids = client.completions.create(model=served.model_id, prompt=ids, max_tokens=4, temperature=0)
    assert [c.text for c in by_ids.choices] == [reply.choices[2 * p].text for p in range(3)]
    streamed = list(client.completions.create(model=served.model_id, prompt=prompts, max_tokens=4, temperature=0,
                                              stream=True))
    texts = {i: "".join(c.choices[0].text for c in streamed if c.choices and c.choices[0].index == i)
             for i in range(3)}
    assert [texts[i] for i in range(3)] == [reply.choices[2 * p].text for p in range(3)]
    assert reply.usage.prompt_tokens == sum(len(i) for i in ids)


def test_engine_scoring_batches_match_one_by_one(long_tiny_model) -> None:
    items = [ScoreItem("a b c"), ScoreItem(PROMPT, " Paris"), ScoreItem(ids=(5, 6, 7, 8))]
    batched = score_batch(long_tiny_model, items, top_logprobs=2)
    for item, got in zip(items, batched, strict=True):
        alone = score_batch(long_tiny_model, [item], top_logprobs=2)[0]
        assert [t.text for t in got.tokens] == [t.text for t in alone.tokens]
        assert [t.logprob or 0 for t in got.tokens] == pytest.approx([t.logprob or 0 for t in alone.tokens],
                                                                     abs=1e-5)
    assert batched[1].text == PROMPT + " Paris" and batched[1].continuation_start == len(PROMPT)  # byte tokens


SCHEMAS = [
    {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer", "minimum": 0,
                                                                           "maximum": 99}},
     "required": ["ok", "n"], "additionalProperties": False},
    {"type": "object", "properties": {"colour": {"enum": ["red", "green", "blue"]},
                                      "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 3}},
     "required": ["colour", "tags"], "additionalProperties": False},
    {"type": "object", "properties": {"name": {"type": "string", "pattern": "^[a-z]{1,8}$"}},
     "required": ["name"], "additionalProperties": False},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_json_schema_output_validates_even_from_a_random_model(client, served, schema) -> None:
    for seed in range(3):
        reply = client.chat.completions.create(
            model=served.model_id, messages=[{"role": "user", "content": "Give me JSON."}], max_tokens=120,
            temperature=1.0, seed=seed,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}})
        assert reply.choices[0].finish_reason == "stop"
        jsonschema.validate(json.loads(reply.choices[0].message.content), schema)


def test_regex_choice_and_json_object(client, served) -> None:
    reply = client.completions.create(model=served.model_id, prompt="Year:", max_tokens=10, temperature=1, seed=1,
                                      extra_body={"structured_outputs": {"regex": "(19|20)[0-9]{2}"}})
    assert len(reply.choices[0].text) == 4 and reply.choices[0].text[:2] in ("19", "20")
    reply = client.completions.create(model=served.model_id, prompt="Pick:", max_tokens=10, temperature=1, seed=2,
                                      extra_body={"guided_choice": ["left", "right"]})
    assert reply.choices[0].text in ("left", "right")
    reply = client.chat.completions.create(model=served.model_id, messages=[{"role": "user", "content": "JSON"}],
                                           max_tokens=60, temperature=0, response_format={"type": "json_object"})
    if reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(reply.choices[0].message.content), dict)
    else:  # a random model may still be inside a string at max_tokens: what it wrote is a prefix of an object
        assert reply.choices[0].message.content.startswith("{")
    with pytest.raises(openai.BadRequestError, match="regex"):
        client.completions.create(model=served.model_id, prompt="x", max_tokens=2,
                                  extra_body={"structured_outputs": {"regex": "[0-9"}})


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
                                                    "unit": {"enum": ["c", "f"]}},
                   "required": ["city", "unit"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {},
                                                                       "additionalProperties": False}}}


def test_tool_call_round_trip(client, served) -> None:
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    reply = client.chat.completions.create(model=served.model_id, messages=messages, tools=[WEATHER, TIME],
                                           tool_choice={"type": "function", "function": {"name": "get_weather"}},
                                           max_tokens=200, temperature=1.0, seed=3)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])
    # The same request streamed: the deltas (name first, then argument pieces) add up to the same call.
    chunks = list(client.chat.completions.create(
        model=served.model_id, messages=messages, tools=[WEATHER, TIME], max_tokens=200, temperature=1.0, seed=3,
        tool_choice={"type": "function", "function": {"name": "get_weather"}}, stream=True))
    deltas = [d for c in chunks if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].function.name == "get_weather" and deltas[0].id == deltas[0].id
    assert "".join(d.function.arguments or "" for d in deltas) == call.function.arguments
    assert len(deltas) > 2  # the arguments arrive piece by piece, not in one block at the end
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    # The client runs the tool and sends its result back; the model answers with text.
    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'}]
    answer = client.chat.completions.create(model=served.model_id, messages=messages, tools=[WEATHER],
                                            tool_choice="none", max_tokens=5, temperature=0)
    assert answer.choices[0].finish_reason in ("stop", "length") and answer.choices[0].message.tool_calls is None
    required = client.chat.completions.create(model=served.model_id, messages=messages[:1], tools=[WEATHER, TIME],
                                              tool_choice="required", max_tokens=200, temperature=1.0, seed=4)
    assert required.choices[0].finish_reason == "tool_calls", required.choices[0].message.content
    assert required.choices[0].message.tool_calls[0].function.name in ("get_weather", "get_time")


def test_logit_bias_and_penalties_change_the_output_as_documented(client, served, long_tiny_model) -> None:
    base = dict(model=served.model_id, prompt=PROMPT, max_tokens=24, temperature=0)
    plain = client.completions.create(**base).choices[0].text
    a = long_tiny_model.tokenizer("A")["input_ids"][0]
    forced = client.completions.create(**base, logit_bias={str(a): 100}).choices[0].text
    assert forced == "A" * 24  # +100 on the token "A" wins every step
    first = long_tiny_model.tokenizer(plain)["input_ids"][0]
    banned = client.completions.create(**base, logit_bias={str(first): -100}).choices[0].text
    assert first not in long_tiny_model.tokenizer(banned)["input_ids"]
    # The penalties reach the engine as given (what they do to the distribution: tests/engine/test_penalties.py).
    for name in ("frequency_penalty", "presence_penalty"):
        served_text = client.completions.create(**base, **{name: 2.0}).choices[0].text
        local = generate(long_tiny_model, GenerationRequest(prompt=PROMPT, max_new_tokens=24, temperature=0,
                                                            **{name: 2.0})).first.text
        assert served_text == local != plain


def test_cors_preflight_and_health(served) -> None:
    base = served.url.removesuffix("/v1")
    for origin in ("http://localhost:5173", "http://127.0.0.1:3000"):
        r = httpx.options(f"{served.url}/chat/completions", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == origin
        assert "POST" in r.headers["access-control-allow-methods"]
        assert "authorization" in r.headers["access-control-allow-headers"]
    r = httpx.options(f"{served.url}/chat/completions", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    r = httpx.get(f"{served.url}/models", headers={"Origin": "http://localhost:8080"})
    assert r.headers["access-control-allow-origin"] == "http://localhost:8080"
    health = httpx.get(f"{base}/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_stop_usage_bytes_and_context(client, served, long_tiny_model) -> None:
    plain = generate(long_tiny_model, GenerationRequest(prompt=PROMPT, max_new_tokens=12, temperature=0)).first
    stop = plain.text[6:8]
    reply = client.completions.create(model=served.model_id, prompt=PROMPT, max_tokens=12, temperature=0, stop=[stop])
    cut = plain.text.index(stop)
    assert reply.choices[0].text == plain.text[:cut]
    spelled = [len("".join(t.text for t in plain.tokens[:i])) for i in range(len(plain.tokens) + 1)]
    generated_until_stop = next(i for i, n in enumerate(spelled) if n >= cut + len(stop))
    assert reply.usage.completion_tokens == generated_until_stop  # the stop's own tokens count: they were made
    with pytest.raises(openai.BadRequestError, match="4096") as err:
        client.completions.create(model=served.model_id, prompt=PROMPT, max_tokens=5000)
    assert err.value.code == "context_length_exceeded"
