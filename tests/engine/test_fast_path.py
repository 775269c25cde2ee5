"""The fast path through the loader and the generation loop (playground.engine.fast): the path each model takes,
same numbers as transformers in fp32, and every generation behaviour (n, seeds, context window, cache growth,
prefix reuse, stored weights) intact. Per-family correctness is in test_families.py."""

from __future__ import annotations

import pytest
import torch

from playground.domain.text import GenerationRequest
from playground.engine.fast import int4_kernel, quality
from playground.engine.fast import runner as fast_runner
from playground.engine.fast.runner import DecoderRunner
from playground.engine.generate import generate
from playground.engine.text import load_text_model
from playground.errors import KnownError
from tests.tiny import build_tiny_llama, rounded_transformers

SHAPE = {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2}

pytestmark = pytest.mark.usefixtures("exact_fp32")


@pytest.fixture(scope="module")
def tiny64_dir(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("tiny64"), context=600, **SHAPE)


def load(folder, precision):
    return load_text_model("tiny64", folder, device="cpu", dtype="float32", precision=precision)


def transformers_of(folder):
    return load_text_model("tiny64", folder, device="cpu", dtype="float32", path="transformers")


def reference_logits(tm, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return tm.model(torch.tensor([ids])).logits[0].float()


def run_fast(tm, ids: list[int], split: int) -> torch.Tensor:
    """Prefill ids[:split], then decode the rest one by one: logits for positions split-1 … end-1."""
    with torch.inference_mode():
        rows = [tm.fast.prefill(0, ids[:split])]
        rows += [tm.fast.step([t], [0])[0] for t in ids[split:]]
    return torch.stack(rows)


def test_fp32_fast_path_matches_transformers_across_prefill_chunks_and_cache_growth(tiny64_dir, monkeypatch):
    monkeypatch.setattr(fast_runner, "PREFILL_CHUNK", 16)  # several prefill chunks
    tm = load(tiny64_dir, "fp32")
    assert tm.fast is not None and tm.precision == "fp32" and tm.hf_model is None  # no transformers module
    assert tm.path == "python"  # fp32 decodes on the runner's torch step (the fused step is for kernel formats)
    ids = list(torch.randint(0, 256, (300,), generator=torch.Generator().manual_seed(1)).tolist())
    # 250 prompt tokens fit the first 256-position cache; decoding past 256 makes it grow and keep its contents.
    got = run_fast(tm, ids, 250)
    assert tm.fast.capacity > 256
    ref = reference_logits(transformers_of(tiny64_dir), ids)[249:]
    assert torch.allclose(got, ref, atol=1e-4, rtol=1e-4), (got - ref).abs().max()


@pytest.mark.parametrize("precision", ["bf16", "int8", "int4", "int4-a8"])
def test_quantized_paths_compute_with_their_rounded_weights(tiny64_dir, precision):
    """Decode at a lower precision equals fp32 transformers running the rounded weights: exactly (1e-4) where
    activations stay fp32, within the activation rounding where they do not (bf16 weights meet bf16 activations,
    int4-a8 rounds them to int8 per group). Quality of the rounding itself is the bench's job."""
    tm = load(tiny64_dir, precision)
    assert tm.precision == precision and tm.path == ("python" if precision == "bf16" else "fused")
    tm.fast.cache_dtype_name = "fp32"  # quantized precisions keep the KV cache in fp16: not what is compared here
    ref_tm = rounded_transformers(tm, tiny64_dir)
    ids = list(range(40, 100))
    got = run_fast(tm, ids, 30)
    ref = reference_logits(ref_tm, ids)[29:]
    err = float((got - ref).abs().max() / ref.abs().max())
    # Random tiny weights (logits ~10) amplify activation rounding; the bench checks it on the real models.
    assert err < {"int8": 1e-4, "int4": 1e-4, "bf16": 1e-1, "int4-a8": 1.2e-1}[precision], err
    assert (got.argmax(-1) == ref.argmax(-1)).float().mean() > 0.9


def test_the_description_says_what_decode_and_prefill_multiply_the_weights_by(tiny64_dir):
    """The status bar / --self-test line names the activation rounding decode actually uses, and prefill's GEMM."""
    tm = load(tiny64_dir, "int4")
    assert tm.describe().endswith("· x fp32 · prefill fp32")  # this module runs with exact fp32 activations
    with int4_kernel.exact_fp32(False):
        int16 = int4_kernel.fp32_x_bits() == 16
        gemm = int4_kernel.prefill_gemm()
        assert tm.describe().endswith(f"· x {'int16' if int16 else 'fp32'} · prefill {gemm}")
        down = "int16" if int16 else "fp32"
        a8_prefill = "int8 (down projection int16)" if gemm == "int16" else gemm
        assert load(tiny64_dir, "int4-a8").describe().endswith(
            f"· x int8 (down projection {down}) · prefill {a8_prefill}")
    assert "· x " not in load(tiny64_dir, "fp32").describe()


def test_int4_a8_keeps_fp32_activations_for_the_down_projection_only(tiny64_dir):
    """qkv, o and gate/up round their inputs to int8, the down projection does not (its outliers cost the most
    perplexity); the fused C++ step takes the same choice per projection as the Python step: from the same cache,
    one step at a time, they agree to float rounding plus the x values that fell to the other int8 step (~0.2%
    typical, a few % at worst on this tiny random model)."""
    tm = load(tiny64_dir, "int4-a8")
    runner = tm.fast
    assert [g.parts[0].precision for g in runner.weights.layers[0].groups()] == ["int4-a8"] * 3 + ["int4"]
    python = DecoderRunner(runner.config, runner.arch, runner.weights, runner.precision)
    python.native_enabled = False
    ids = list(range(40, 70))
    errors = []
    with torch.inference_mode():
        runner.prefill(0, ids[:10], reuse=False)
        python.prefill(0, ids[:10])
        for token in ids[10:]:
            runner.k.copy_(python.k)
            runner.v.copy_(python.v)
            got, want = runner.step([token], [0])[0], python.step([token], [0])[0]
            errors.append(float((got - want).abs().max() / want.abs().max()))
    assert sorted(errors)[len(errors) // 2] < 1e-2, errors
    assert max(errors) < 6e-2, errors


def test_generation_on_the_fast_path_reports_logprobs_of_its_own_distribution(tiny64_dir):
    tm = load(tiny64_dir, "fp32")
    result = generate(tm, GenerationRequest(prompt="hello", temperature=0, max_new_tokens=12))
    ids = list(tm.tokenizer("hello")["input_ids"]) + [t.token_id for t in result.first.tokens]
    logprobs = torch.log_softmax(reference_logits(transformers_of(tiny64_dir), ids), dim=-1)
    for i, token in enumerate(result.first.tokens):
        expected = float(logprobs[len(ids) - len(result.first.tokens) - 1 + i, token.token_id])
        assert token.logprob == pytest.approx(expected, abs=1e-4)
        assert token.top[0].logprob >= token.logprob - 1e-6


def test_n_completions_on_the_fast_path_match_single_runs(tiny64_dir):
    """n completions rewind the static cache to the prompt; each must equal a run of its own with its seed."""
    tm = load(tiny64_dir, "int4")
    req = GenerationRequest(prompt="The cat", temperature=1.0, max_new_tokens=10, seed=7)
    both = generate(tm, GenerationRequest(**{**req.__dict__, "n": 3}))
    singles = [generate(tm, GenerationRequest(**{**req.__dict__, "seed": 7 + i})).first.text for i in range(3)]
    assert [c.text for c in both.completions] == singles
    assert len(set(singles)) > 1


def test_fast_path_stops_at_the_context_window(tmp_path):
    tm = load_text_model("ctx", build_tiny_llama(tmp_path / "m", context=40, **SHAPE), device="cpu",
                         dtype="float32", precision="int8")
    result = generate(tm, GenerationRequest(prompt="x" * 30, temperature=0, max_new_tokens=100))
    assert len(result.first.tokens) <= 10


def test_auto_keeps_small_models_on_transformers_and_bad_choices_are_explained(tiny64_dir, tmp_path, monkeypatch):
    small = load(tiny64_dir, "auto")
    assert small.fast is None and small.path == "transformers"  # too small to gain from quantizing
    monkeypatch.setenv("PLAYGROUND_PRECISION", "int8")
    assert load(tiny64_dir, None).precision == "int8"
    with pytest.raises(KnownError, match="Unknown precision"):
        load(tiny64_dir, "int3")
    odd = build_tiny_llama(tmp_path / "odd", hidden_size=40, intermediate_size=80, num_attention_heads=4,
                           num_key_value_heads=2)
    with pytest.raises(KnownError, match="multiple of 32"):
        load_text_model("odd", odd, device="cpu", dtype="float32", precision="int4")


@pytest.mark.embedded
def test_embedded_model_defaults_to_int4_and_answers_like_fp32(embedded_model):
    """The default precision must give the fp32 model's greedy answers (the bench checks 20 prompts), on the path
    it claims: int4 weights, the fused C++ step (not a fallback)."""
    assert embedded_model.precision == "int4" and embedded_model.path == "fused"
    from tests.conftest import embedded_home

    folder = embedded_home() / "models" / embedded_model.id
    plain = load_text_model(embedded_model.id, folder, device="cpu", path="transformers")
    prompts = quality.few_shot_prompts()[::4]  # one query per task; the bench runs all twenty
    fast_answers = quality.greedy_answers(embedded_model, prompts)
    assert quality.agreement(fast_answers, quality.greedy_answers(plain, prompts)) == 1.0
    assert fast_answers[0] == "Rome"
    # 600 tokens of the varied text here (the bench scores all of it against the 1% goal).
    ppl_fast, ppl_plain = (quality.perplexity(m, max_tokens=600) for m in (embedded_model, plain))
    assert abs(ppl_fast / ppl_plain - 1) < 2 * quality.PERPLEXITY_TOLERANCE
    # The same tokens through one prefill, in the default arithmetic (prefill's GEMM in bf16 where the CPU can).
    with int4_kernel.exact_fp32(False):
        ppl_prefill = quality.prefill_perplexity(embedded_model, max_tokens=600)
    assert abs(ppl_prefill / quality.prefill_perplexity(plain, max_tokens=600) - 1) < quality.PERPLEXITY_TOLERANCE


def test_a_new_prompt_reuses_the_cached_source_but_never_decoded_positions(tiny64_dir):
    """Change the prompt, keep the source: only the new tokens run, and the answer is what a fresh run gives."""
    tm = load(tiny64_dir, "int8")
    fresh = load(tiny64_dir, "int8")
    source, first, second = list(range(30, 90)), [5, 6, 7], [8, 9]
    cut = (len(source),)  # the caller's checkpoint: where the source ends
    with torch.inference_mode():
        tm.fast.prefill(0, source + first, checkpoints=cut)
        decoded = [tm.fast.step([11], [0])[0]]  # a decoded token sits in the cache after the prompt
        logits = tm.fast.prefill(0, source + second, checkpoints=cut)
        assert tm.fast.reused == len(source)
        assert torch.equal(logits, fresh.fast.prefill(0, source + second, checkpoints=cut))
        # The prompt now continues with the token decoded above: that position is recomputed, not reused.
        tm.fast.prefill(0, source + first, checkpoints=cut)
        tm.fast.step([11], [0])
        again = tm.fast.prefill(0, source + first + [11, 12], checkpoints=cut)
        assert tm.fast.reused == len(source)
        assert torch.equal(again, fresh.fast.prefill(0, source + first + [11, 12], checkpoints=cut))
    assert decoded[0].shape == logits.shape


def test_quantized_weights_are_stored_and_a_damaged_store_is_redone(tiny64_dir, data_home):
    from playground.engine.fast.store import store_path

    first = load(tiny64_dir, "int4")
    path = store_path(tiny64_dir, "int4")
    assert path.is_file() and path.is_relative_to(data_home)
    second = load(tiny64_dir, "int4")  # read back, not quantized again: same numbers
    ids = list(range(50, 80))
    assert torch.equal(run_fast(first, ids, 20), run_fast(second, ids, 20))
    damaged = path.with_name("damaged")
    damaged.write_bytes(path.read_bytes()[:100])  # cut short (a full disk, a copy from a crashed machine)
    damaged.replace(path)  # a new file: the loaded layers still map the old one
    third = load(tiny64_dir, "int4")
    assert torch.allclose(run_fast(third, ids, 20), run_fast(second, ids, 20), atol=1e-4)
    assert path.stat().st_size > 100  # rewritten
