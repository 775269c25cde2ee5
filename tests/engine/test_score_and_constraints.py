"""Scoring, penalties, logit bias, token prompts and constrained output in the engine, on transformers' forward and
on the fast path (the same tiny models)."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from playground.domain.score import ScoreItem
from playground.domain.text import Constraint, GenerationRequest
from playground.engine.generate import generate
from playground.engine.sampling import apply_penalties
from playground.engine.score import score, score_batch
from playground.engine.text import load_text_model
from playground.errors import ContextOverflow, ParameterError
from tests.tiny import build_tiny_llama, rounded_transformers

SHAPE = {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2}
TEXT = "The cat sat on the mat. "


@pytest.fixture(scope="module")
def tiny64_dir(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("tiny64s"), context=600, **SHAPE)


def reference(tm, text: str) -> list[float]:
    ids = tm.tokenizer(text)["input_ids"]
    with torch.inference_mode():
        logprobs = torch.log_softmax(tm.model(torch.tensor([ids])).logits[0].float(), -1)
    return [logprobs[i - 1, ids[i]].item() for i in range(1, len(ids))]


@pytest.mark.usefixtures("exact_fp32")
@pytest.mark.parametrize("precision", [None, "fp32", "int4"])
def test_scoring_is_the_models_own_distribution_on_every_path(tiny64_dir, precision) -> None:
    """Scores are the distribution of the path that runs: transformers', the fp32 runner's, and the int4 runner's
    (transformers on its rounded weights: the KV cache kept fp32 here, as fp32 does; the kernels in exact fp32)."""
    tm = load_text_model("t", tiny64_dir, device="cpu", dtype="float32", precision=precision or "auto")
    assert (tm.fast is None) == (precision is None)
    ref = tm
    if precision == "int4":
        tm.fast.cache_dtype_name = "fp32"
        ref = rounded_transformers(tm, tiny64_dir)
    result = score(tm, TEXT * 3, " and more", top_logprobs=3)
    assert result.text == TEXT * 3 + " and more"
    assert result.tokens[0].logprob is None
    got = [t.logprob for t in result.tokens[1:]]
    assert got == pytest.approx(reference(ref, TEXT * 3 + " and more"), abs=1e-4)
    assert result.continuation_start == len(TEXT * 3) and result.continuation[0].text == " "
    assert result.continuation_logprob == pytest.approx(sum(got[-len(" and more"):]), abs=1e-4)
    for t in result.tokens[1:]:
        assert len(t.top) == 3 and t.top[0].logprob >= t.logprob - 1e-6
        assert t.greedy == (t.top[0].token_id == t.token_id)


def test_scoring_leaves_generation_unchanged_on_the_fast_path(tiny64_dir) -> None:
    tm = load_text_model("t", tiny64_dir, device="cpu", dtype="float32", precision="int4")
    req = GenerationRequest(prompt=TEXT, max_new_tokens=12, temperature=0)
    before = generate(tm, req).first.text
    score(tm, "something else entirely")
    assert generate(tm, req).first.text == before  # the cache it used is not taken for the prompt's


def test_scores_of_token_ids_and_a_batch(tiny_model) -> None:
    ids = tuple(tiny_model.tokenizer(TEXT)["input_ids"])
    by_ids, by_text = score_batch(tiny_model, [ScoreItem(ids=ids), ScoreItem(TEXT)])
    assert by_ids.text == by_text.text == TEXT
    assert [t.logprob for t in by_ids.tokens] == [t.logprob for t in by_text.tokens]
    with pytest.raises(ParameterError, match="token ids"):
        score_batch(tiny_model, [ScoreItem(ids=(10**6,))])


def test_penalties_and_bias_are_openais_formula() -> None:
    logits = torch.tensor([1.0, 2.0, 3.0, 4.0])
    counts = torch.tensor([0.0, 1.0, 3.0, 0.0])
    req = GenerationRequest(prompt="x", presence_penalty=0.5, frequency_penalty=0.25, logit_bias=((3, -2.0),))
    # logit - frequency * count - presence * (count > 0) + bias
    assert apply_penalties(logits, counts, req).tolist() == [1.0, 2.0 - 0.25 - 0.5, 3.0 - 0.75 - 0.5, 2.0]


def test_penalties_reduce_repetition(tiny_model) -> None:
    def most_repeated(**kw) -> int:
        tokens = generate(tiny_model, GenerationRequest(prompt="Country: France\nCapital:", max_new_tokens=40,
                                                         temperature=0,
                                                         **kw)).first.tokens
        ids = [t.token_id for t in tokens]
        return max(ids.count(i) for i in set(ids))

    plain = most_repeated()
    assert plain > 3  # a random model loops
    assert most_repeated(frequency_penalty=2.0) < plain
    assert most_repeated(presence_penalty=2.0) < plain
    assert most_repeated(presence_penalty=-2.0) > plain  # negative: repeats are encouraged


def test_token_prompts_and_the_context_cap(tiny_model) -> None:
    ids = tuple(tiny_model.tokenizer(TEXT)["input_ids"])
    by_text = generate(tiny_model, GenerationRequest(prompt=TEXT, max_new_tokens=5, temperature=0))
    by_ids = generate(tiny_model, GenerationRequest(prompt="", prompt_ids=ids, max_new_tokens=5, temperature=0))
    assert by_ids.first.text == by_text.first.text and by_ids.prompt_tokens == len(ids)
    with pytest.raises(ContextOverflow, match="lower max tokens"):
        generate(tiny_model, GenerationRequest(prompt=TEXT, max_new_tokens=500, cap_to_context=False))
    capped = generate(tiny_model, GenerationRequest(prompt=TEXT, max_new_tokens=500, temperature=0))
    assert len(capped.first.tokens) <= tiny_model.context_length - len(ids)  # the app's default: decode stops


@pytest.mark.parametrize("value", [math.nan, math.inf, 1e-45])
def test_nan_and_tiny_temperatures_are_parameter_errors(tiny_model, value) -> None:
    with pytest.raises(ParameterError, match="temperature"):
        generate(tiny_model, GenerationRequest(prompt="x", temperature=value))
    with pytest.raises(ParameterError, match="repetition penalty"):
        GenerationRequest(prompt="x", repetition_penalty=math.nan).validate()


@pytest.mark.parametrize("precision", [None, "int4"])
def test_constrained_output_on_both_paths(tiny64_dir, precision) -> None:
    tm = load_text_model("t", tiny64_dir, device="cpu", dtype="float32", precision=precision or "auto")
    cases = [(Constraint("regex", r"[0-9]{2,4}-[a-c]+"), lambda t: re.fullmatch(r"[0-9]{2,4}-[a-c]+", t)),
             (Constraint("choice", '["north", "south", "east"]'), lambda t: t in ("north", "south", "east")),
             (Constraint("json_schema", json.dumps({"type": "object", "properties": {"n": {"type": "integer"}},
                                                    "required": ["n"], "additionalProperties": False})),
              lambda t: isinstance(json.loads(t)["n"], int))]
    for constraint, ok in cases:
        for seed in range(3):
            result = generate(tm, GenerationRequest(prompt="Answer:", max_new_tokens=40, temperature=1.0, seed=seed,
                                                    constraint=constraint, n=2))
            for c in result.completions:
                assert c.finish_reason == "stop" and ok(c.text), (constraint.kind, c.text)


def test_a_bad_constraint_is_a_parameter_error(tiny_model) -> None:
    for constraint in (Constraint("regex", "[0-9"), Constraint("json_schema", "{not json"),
                       Constraint("choice", "[]")):
        with pytest.raises(ParameterError):
            generate(tiny_model, GenerationRequest(prompt="x", constraint=constraint))
    with pytest.raises(ParameterError, match="unknown constraint"):
        Constraint("xml")
