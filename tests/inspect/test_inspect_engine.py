"""The inspector's numbers against transformers' own, on tiny random models (a llama and a GPT-2, built here) and
on the embedded SmolLM2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from playground.domain.inspect import InspectRequest
from playground.domain.jobs import Cancel
from playground.domain.text import GenerationRequest
from playground.engine.generate import generate
from playground.engine.inspect import attention as attention_mod
from playground.engine.inspect.attention import inspect, max_tokens
from playground.engine.inspect.lens import layer_logits, lens
from playground.engine.inspect.model import load_inspect_model
from playground.errors import ContextOverflow, ParameterError
from playground.tasks.probe import ProbeRequest, engine_scorer, run_probe

SOURCE = "Country: France\nCapital: Paris\n\n"
PROMPT = "Country: Italy\nCapital:"


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_inspect_model("tiny-llama", tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    from transformers import GPT2Config, GPT2LMHeadModel

    from tests.tiny import byte_tokenizer

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    torch.manual_seed(1)
    config = GPT2Config(vocab_size=257, n_positions=96, n_embd=32, n_layer=3, n_head=4, eos_token_id=256,
                        bos_token_id=256, initializer_range=0.3)
    GPT2LMHeadModel(config).save_pretrained(str(folder))
    byte_tokenizer().save_pretrained(str(folder))
    return load_inspect_model("tiny-gpt2", folder, device="cpu")


def reference(folder, ids):
    """transformers' own eager forward with output_attentions, on a separately loaded copy."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), attn_implementation="eager", dtype=torch.float32)
    with torch.inference_mode():
        return model(torch.tensor([ids]), output_attentions=True)


def check_causal_rows(att):
    t = att.shape[-1]
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-5)  # every query's weights are a distribution
    upper = np.triu(np.ones((t, t), dtype=bool), k=1)
    assert np.all(att[..., upper] == 0.0)  # no token sees a later one
    assert np.all(att >= 0)


@pytest.mark.parametrize("model_name", ["tiny", "tiny_gpt2"])
def test_attention_is_causal_and_equals_transformers_output_attentions(model_name, request):
    tm = request.getfixturevalue(model_name)
    insp = inspect(tm, InspectRequest(prompt=PROMPT, source=SOURCE))
    cfg = tm.model.config
    t = len(SOURCE + PROMPT)  # the byte tokenizer: one token per byte, no special tokens added
    assert insp.attention.shape == (cfg.num_hidden_layers, cfg.num_attention_heads, t, t)
    assert insp.attention.dtype == np.float32
    check_causal_rows(insp.attention)
    ref = reference(tm.model.name_or_path, list(insp.token_ids))
    expected = torch.stack([a[0] for a in ref.attentions]).numpy()
    np.testing.assert_allclose(insp.attention, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model_name", ["tiny", "tiny_gpt2"])
def test_lens_last_layer_is_the_models_own_next_token_distribution(model_name, request):
    tm = request.getfixturevalue(model_name)
    insp = inspect(tm, InspectRequest(prompt=PROMPT, source=SOURCE))
    t = len(insp)
    assert sorted(insp.lens) == list(range(t - attention_mod.FIRST_LENS, t))  # the first view: the last ones
    everywhere = lens(tm, insp.hidden, range(t))
    probs = torch.softmax(reference(tm.model.name_or_path, list(insp.token_ids)).logits[0], dim=-1)
    for pos in range(t):
        layers = everywhere[pos]
        assert [entry.layer for entry in layers] == list(range(tm.model.config.num_hidden_layers + 1))
        final = layers[-1].top
        values, ids = torch.topk(probs[pos], 5)
        assert [p.token_id for p in final] == ids.tolist()
        np.testing.assert_allclose([p.prob for p in final], values.numpy(), rtol=1e-4, atol=1e-6)
        # the first view's entries are the same computation (chunked differently: equal up to rounding)
        if pos in insp.lens:
            for first, again in zip(insp.lens[pos], layers, strict=True):
                assert [p.token_id for p in first.top] == [p.token_id for p in again.top]
                assert [p.prob for p in first.top] == pytest.approx([p.prob for p in again.top], rel=1e-5)


def test_tokens_spell_the_text_and_mark_source_prompt_and_completion(tiny):
    insp = inspect(tiny, InspectRequest(prompt=PROMPT, source=SOURCE, completion=" Rome"))
    assert "".join(insp.tokens) == SOURCE + PROMPT + " Rome"
    assert insp.source_tokens == len(SOURCE) and insp.prompt_tokens == len(SOURCE + PROMPT)
    assert insp.generated == 0


def test_new_tokens_are_the_greedy_continuation(tiny, tiny_model):
    insp = inspect(tiny, InspectRequest(prompt=PROMPT, new_tokens=6))
    expected = generate(tiny_model, GenerationRequest(prompt=PROMPT, temperature=0, max_new_tokens=6))
    gen = [t.token_id for t in expected.first.tokens]
    assert insp.generated == len(gen) and list(insp.token_ids[-len(gen):]) == gen
    assert "".join(insp.tokens[-len(gen):]) == expected.first.text
    assert insp.attention.shape[-1] == len(PROMPT) + len(gen)
    check_causal_rows(insp.attention)


def test_a_text_beyond_the_budget_is_refused_with_a_message(tiny, monkeypatch):
    with pytest.raises(ContextOverflow, match="tokens"):
        inspect(tiny, InspectRequest(prompt="x" * (tiny.context_length + 1)))
    monkeypatch.setattr(attention_mod, "ATTENTION_BUDGET_BYTES", 4 * 2 * 4 * 20 * 20)  # 20 tokens on 2x4 heads
    assert max_tokens(tiny) == 20
    with pytest.raises(ContextOverflow, match="memory budget allows 20"):
        inspect(tiny, InspectRequest(prompt="y" * 21))
    with pytest.raises(ParameterError):
        inspect(tiny, InspectRequest(prompt=""))


def test_a_cancelled_inspection_stops_before_its_forward_pass(tiny):
    cancel = Cancel()
    cancel.set()
    with pytest.raises(attention_mod.Cancelled):
        inspect(tiny, InspectRequest(prompt=PROMPT, new_tokens=4), cancel=cancel)


@pytest.mark.parametrize("model_name", ["tiny", "tiny_gpt2"])
def test_probe_logprobs_equal_a_forward_pass_over_the_full_strings(model_name, request):
    tm = request.getfixturevalue(model_name)  # the inspector's eager model, scored by the engine's score_batch
    probe = ProbeRequest("The {job} was a", ("nurse", "much longer doctor text"), (" man", " y z"))
    rows = run_probe(probe, engine_scorer(tm))  # mixed lengths in one batch: padding in play
    assert [(r.value, r.continuation) for r in rows] == [(v, c) for v in probe.values for c in probe.continuations]
    for row in rows:
        text = probe.text_for(row.value)
        ids = tm.tokenizer(text + row.continuation)["input_ids"]
        n = len(tm.tokenizer(row.continuation, add_special_tokens=False)["input_ids"])
        with torch.inference_mode():
            logprobs = torch.log_softmax(tm.model(torch.tensor([ids])).logits[0].float(), dim=-1)
        expected = sum(float(logprobs[p - 1, ids[p]]) for p in range(len(ids) - n, len(ids)))
        assert row.logprob == pytest.approx(expected, abs=1e-4)


# -- the embedded model ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def embedded_inspect():
    from playground import paths
    from playground.models.embedded import EMBEDDED_ID, ensure_embedded
    from tests.conftest import embedded_home

    paths.set_data_dir(embedded_home())
    try:
        return load_inspect_model(EMBEDDED_ID, ensure_embedded(), device="cpu")
    finally:
        paths.set_data_dir(None)


@pytest.mark.embedded
def test_embedded_attention_lens_and_scores_agree_with_transformers(embedded_inspect):
    tm = embedded_inspect
    insp = inspect(tm, InspectRequest(prompt=PROMPT, source=SOURCE))
    assert insp.attention.shape[:2] == (30, 9)
    check_causal_rows(insp.attention)
    ref = reference(tm.model.name_or_path, list(insp.token_ids))
    np.testing.assert_allclose(insp.attention, torch.stack([a[0] for a in ref.attentions]).numpy(), atol=1e-5)
    final = insp.lens[len(insp) - 1][-1].top
    probs = torch.softmax(ref.logits[0, -1], dim=-1)
    assert final[0].text == " Rome"  # the few-shot answer, at the last layer
    assert final[0].prob == pytest.approx(float(probs.max()), rel=1e-4)
    # early layers do not know it yet: the answer appears somewhere in the network
    rome = final[0].token_id
    per_layer = torch.softmax(layer_logits(tm, insp.hidden, [len(insp) - 1]), dim=-1)[:, 0, rome].tolist()
    assert per_layer[0] < 0.01 < per_layer[-1]
    rome, paris = run_probe(ProbeRequest("{c}", (PROMPT,), (" Rome", " Paris")), engine_scorer(tm))
    ids = tm.tokenizer(PROMPT + " Rome")["input_ids"]
    with torch.inference_mode():
        logprobs = torch.log_softmax(tm.model(torch.tensor([ids])).logits[0], dim=-1)
    assert rome.logprob == pytest.approx(float(logprobs[-2, ids[-1]]), abs=1e-4)
    assert rome.logprob > paris.logprob


def test_a_gguf_is_inspected_from_its_own_file_without_a_conversion(tmp_path, data_home):
    """Inspecting a GGUF had gone through transformers' GGUF conversion (41 s for a Qwen2.5-0.5B Q5_K_M, and a
    converted copy left on disk); it is now read by the engine's own GGUF reader, with the same numbers."""
    from playground import paths
    from playground.runtime.inspection import load_for_inspection
    from tests.gguf_files import tiny_model as tiny_hf_model
    from tests.gguf_files import write_gguf

    hf = tiny_hf_model("qwen2")
    path = write_gguf(hf, tmp_path / "tiny-qwen.gguf", quant="F32")
    stages: list[str] = []
    tm = load_for_inspection(str(path), device="cpu", on_progress=lambda e: stages.append(e.stage))
    assert not any("convert" in s.lower() for s in stages)
    assert not list(paths.models_dir().glob("gguf-*"))  # no converted copy
    insp = inspect(tm, InspectRequest(prompt="hello world"))
    check_causal_rows(insp.attention)
    hf.set_attn_implementation("eager")  # the reference: transformers' own model, eager, on the same weights
    with torch.inference_mode():
        ref = hf(torch.tensor([list(insp.token_ids)]), output_attentions=True)
    np.testing.assert_allclose(insp.attention, torch.stack([a[0] for a in ref.attentions]).numpy(), atol=1e-5)
    last = lens(tm, insp.hidden, [len(insp) - 1])[len(insp) - 1][-1].top
    values, ids = torch.topk(torch.softmax(ref.logits[0, -1], dim=-1), 5)
    assert [p.token_id for p in last] == ids.tolist()
    np.testing.assert_allclose([p.prob for p in last], values.numpy(), rtol=1e-4, atol=1e-6)


def test_a_gguf_the_reader_cannot_take_is_inspected_through_transformers_conversion(tmp_path, data_home):
    """IQ2_XXS (not repacked by the engine's reader, dequantized by transformers' gguf-py): the inspector says it
    converts, then inspects the converted model."""
    from playground.runtime.inspection import load_for_inspection
    from tests.gguf_files import tiny_model as tiny_hf_model
    from tests.gguf_files import write_gguf

    path = write_gguf(tiny_hf_model("qwen2", hidden_size=256, intermediate_size=256), tmp_path / "iq.gguf",
                      quant="IQ2_XXS")
    stages: list[str] = []
    tm = load_for_inspection(str(path), device="cpu", on_progress=lambda e: stages.append(e.stage))
    assert any("IQ2_XXS" in s and "converting it with transformers" in s for s in stages)
    insp = inspect(tm, InspectRequest(prompt="hello world"))
    check_causal_rows(insp.attention)
