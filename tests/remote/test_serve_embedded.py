"""``serve`` on the real embedded model (SmolLM2-135M-Instruct) with the official client: JSON-schema output that
validates on 20 of 20 varied prompts, a tool call chosen by the model itself, and echo scoring that ranks the right
answer first."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import jsonschema
import openai
import pytest

from tests.conftest import embedded_home

pytestmark = pytest.mark.embedded

PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 40},
                                           "age": {"type": "integer", "minimum": 0, "maximum": 130}},
          "required": ["name", "age"], "additionalProperties": False}
CITY = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40},
                                         "country": {"type": "string", "maxLength": 40},
                                         "population_millions": {"type": "number", "multipleOf": 0.1,
                                                                                "maximum": 100000}},
        "required": ["city", "country"], "additionalProperties": False}
REVIEW = {"type": "object", "properties": {"sentiment": {"enum": ["positive", "negative", "neutral"]},
                                           "score": {"type": "integer", "minimum": 1, "maximum": 5},
                                           "keywords": {"type": "array", "items": {"type": "string", "maxLength": 20},
                                                        "maxItems": 4}},
          "required": ["sentiment", "score", "keywords"], "additionalProperties": False}
ITEMS = {"type": "object", "properties": {"items": {"type": "array", "minItems": 1, "maxItems": 5, "items": {
    "type": "object", "properties": {"name": {"type": "string", "maxLength": 30}, "qty": {"type": "integer"}},
    "required": ["name", "qty"], "additionalProperties": False}}}, "required": ["items"], "additionalProperties": False}
CASES = [
    (PERSON, "Ann is 31 years old."), (PERSON, "Describe the main character of a pirate story."),
    (PERSON, "My grandfather Bob turned 88 last week."), (PERSON, "Invent a person."),
    (PERSON, "Who wrote Hamlet, and how old did he get?"),
    (CITY, "Tell me about Paris."), (CITY, "Tokyo is huge."), (CITY, "Which city is the capital of Italy?"),
    (CITY, "A small town in Norway."), (CITY, "Where is the Eiffel Tower?"),
    (REVIEW, "The food was great but the service was slow."), (REVIEW, "Terrible. Never again."),
    (REVIEW, "It was fine, nothing special."), (REVIEW, "Best phone I ever owned, battery lasts days!"),
    (REVIEW, "The movie was long and boring."),
    (ITEMS, "Shopping list: 3 apples, 2 bread, 1 milk."), (ITEMS, "I need eggs and flour for a cake."),
    (ITEMS, "Pack for a trip: socks, shirts, a toothbrush."), (ITEMS, "Order 10 pencils and 4 notebooks."),
    (ITEMS, "What do I need for a picnic?"),
]


@pytest.fixture(scope="module")
def embedded_url() -> Iterator[str]:
    from playground import paths
    from playground.models.embedded import EMBEDDED_ID
    from playground.remote.serve_app import ServeApp
    from playground.remote.server import PlaygroundServer
    from playground.runtime.runner import EngineRunner

    paths.set_data_dir(embedded_home())
    try:
        runner = EngineRunner(device="cpu", thread_name="serve-engine")
        runner.load(EMBEDDED_ID).result(300)
    finally:
        paths.set_data_dir(None)
    server = PlaygroundServer(ServeApp(runner, EMBEDDED_ID, log=lambda line: None), "127.0.0.1", 0).start()
    try:
        yield server.url
    finally:
        server.stop()
        runner.shutdown()


@pytest.fixture
def client(embedded_url):
    with openai.OpenAI(base_url=embedded_url, api_key="unused", max_retries=0, timeout=120) as c:
        yield c


def test_json_schema_output_validates_on_20_of_20_prompts(client) -> None:
    valid = 0
    for schema, prompt in CASES:
        reply = client.chat.completions.create(
            model="smollm2-135m-instruct", messages=[{"role": "user", "content": prompt + " Answer in JSON."}],
            max_tokens=200, temperature=0.7, seed=1,
            response_format={"type": "json_schema", "json_schema": {"name": "out", "schema": schema,
                                                                    "strict": True}})
        text = reply.choices[0].message.content
        assert reply.choices[0].finish_reason == "stop", (prompt, text)
        # JSON numbers as decimals, as JSON Schema means them: 31122.1 is a multiple of 0.1 (in floats the
        # quotient is 311221.00000000006, which jsonschema rejects)
        jsonschema.validate(json.loads(text, parse_float=Decimal), json.loads(json.dumps(schema), parse_float=Decimal))
        valid += 1
    assert valid == 20


def test_the_model_calls_a_tool_when_asked_with_auto(client) -> None:
    weather = {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}},
                       "required": ["city"], "additionalProperties": False}}}
    reply = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[weather], tool_choice="required", max_tokens=60, temperature=0)
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert "paris" in json.loads(call.function.arguments)["city"].lower()


def test_echo_scoring_ranks_the_right_answer_first(client) -> None:
    prompt = "Country: France\nCapital: Paris\n\nCountry: Italy\nCapital:"
    sums = {}
    for answer in (" Rome", " Paris", " Berlin"):
        reply = client.completions.create(model="smollm2-135m-instruct", prompt=prompt + answer, echo=True,
                                          logprobs=0, max_tokens=0)
        sums[answer] = reply.choices[0].logprobs.token_logprobs[-1]
    assert max(sums, key=sums.get) == " Rome"
