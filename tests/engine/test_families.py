"""The fast runner on every decoder family it covers, against transformers' own forward.

Tiny random configs of each family, built in-process: Llama 3.2 (llama3 rope scaling, tied embeddings), Mistral
(sliding window), Qwen2 (QKV bias), Qwen3 (QK-norm), Gemma 2 (soft-capping, sliding + global layers, (1 + w)
norms, GELU-tanh, scaled embeddings), Gemma 3 (QK-norm, per-layer-type rope), Phi-3 (fused qkv / gate_up, partial
rotary, window). Sequences are longer than the windows and cross prefill chunks.
"""

from __future__ import annotations

import pytest
import torch

from playground.engine.fast import int4_kernel, int8_kernel, kernels
from playground.engine.fast import runner as runner_mod
from playground.engine.fast.runner import DecoderRunner
from tests.gguf_files import rel_error

BASE = {"vocab_size": 300, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 3,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512, "pad_token_id": 0,
        "eos_token_id": 1, "bos_token_id": 2}
LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 64, "rope_theta": 10000.0}

pytestmark = pytest.mark.usefixtures("exact_fp32")


def _family(name: str):
    import transformers as tf

    hd16 = {**BASE, "head_dim": 16}
    return {
        "llama3.2": (tf.LlamaConfig(**BASE, rope_parameters=LLAMA3_ROPE, tie_word_embeddings=True),
                     tf.LlamaForCausalLM),
        "mistral": (tf.MistralConfig(**BASE, sliding_window=8), tf.MistralForCausalLM),
        "qwen2": (tf.Qwen2Config(**BASE), tf.Qwen2ForCausalLM),
        "qwen3": (tf.Qwen3Config(**hd16), tf.Qwen3ForCausalLM),
        "gemma2": (tf.Gemma2Config(**hd16, sliding_window=8, query_pre_attn_scalar=24, attn_logit_softcapping=50.0,
                                   final_logit_softcapping=30.0), tf.Gemma2ForCausalLM),
        "gemma3": (tf.Gemma3TextConfig(**hd16, sliding_window=8, query_pre_attn_scalar=24,
                                       layer_types=["sliding_attention", "full_attention", "sliding_attention"]),
                   tf.Gemma3ForCausalLM),
        "phi3": (tf.Phi3Config(**BASE, partial_rotary_factor=0.5, sliding_window=10), tf.Phi3ForCausalLM),
    }[name]


FAMILIES = ["llama3.2", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"]
IDS = torch.randint(3, 300, (48,), generator=torch.Generator().manual_seed(1)).tolist()
SPLIT = 30  # prefill IDS[:SPLIT], then decode the rest one token at a time


@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    """(config, HF-named tensors, transformers' fp32 logits for IDS) of one family's tiny random model."""
    config, cls = _family(request.param)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = cls(config).eval()
    with torch.no_grad():  # norms and biases away from their init (zeros / ones), so they are really tested
        for name, p in model.named_parameters():
            if "norm" in name:
                p.normal_(0, 0.3)
            elif name.endswith("bias"):
                p.normal_(0, 0.1)
        ref = model(torch.tensor([IDS])).logits[0].float()
    return request.param, config, dict(model.state_dict()), ref


def _run(r: DecoderRunner, slot: int = 0) -> torch.Tensor:
    with torch.inference_mode():
        rows = [r.prefill(slot, IDS[:SPLIT])]
        rows += [r.step([t], [slot])[0] for t in IDS[SPLIT:]]
    return torch.stack(rows)


def test_fp32_runner_equals_transformers(family, monkeypatch):
    name, config, tensors, ref = family
    monkeypatch.setattr(runner_mod, "PREFILL_CHUNK", 16)  # two prefill chunks
    r = DecoderRunner.from_tensors(config, tensors, "fp32")
    assert r.path == "python"
    got = _run(r)
    assert (got - ref[SPLIT - 1:]).abs().max() < 1e-4, name


def test_long_prefill_reads_only_the_keys_each_query_block_sees(family, monkeypatch):
    """A prompt many query blocks long (forward.QUERY_BLOCK), in chunks that start past 0: every position's logits
    equal transformers', windows included (each block attends over the keys up to its own last position)."""
    from playground.engine.fast import forward

    name, config, tensors, _ = family
    monkeypatch.setattr(runner_mod, "PREFILL_CHUNK", 96)
    monkeypatch.setattr(forward, "QUERY_BLOCK", 32)
    ids = torch.randint(3, 300, (250,), generator=torch.Generator().manual_seed(4)).tolist()
    model = _family(name)[1](config).eval()
    model.load_state_dict(tensors)
    r = DecoderRunner.from_tensors(config, tensors, "fp32")
    with torch.no_grad(), torch.inference_mode():
        want = model(torch.tensor([ids])).logits[0].float()
        got = r.logits(r.hidden_states(0, ids))
    assert (got - want).abs().max() < 1e-4, name


def _rounded(tensors: dict, arch_tied: bool) -> dict:
    """The tensors with every linear weight replaced by what int4 multiplies by (the head: int8)."""
    out = dict(tensors)
    for key, w in tensors.items():
        if key.endswith("proj.weight"):
            out[key] = int4_kernel.dequantize(int4_kernel.quantize(w))
    head = "model.embed_tokens.weight" if arch_tied or "lm_head.weight" not in tensors else "lm_head.weight"
    out[head] = int8_kernel.dequantize(*int8_kernel.quantize(tensors[head]))
    if head == "lm_head.weight":  # an untied embedding is kept int8 as well
        emb = tensors["model.embed_tokens.weight"]
        out["model.embed_tokens.weight"] = int8_kernel.dequantize(*int8_kernel.quantize(emb))
    return out


def test_int4_fused_step_equals_fp32_on_the_rounded_weights(family):
    """int4 weights with fp32 activations compute exactly what fp32 does on the dequantized weights: the kernel
    and the fused C++ step (asserted as the path taken) add only float rounding."""
    name, config, tensors, _ = family
    r = DecoderRunner.from_tensors(config, tensors, "int4")
    r.cache_dtype_name = "fp32"  # the fp16 cache of quantized precisions is not what is compared here
    assert kernels.available() and r.path == "fused", kernels.unavailable_reason()
    plain = DecoderRunner.from_tensors(config, _rounded(tensors, r.arch.tied), "fp32")
    assert rel_error(_run(r), _run(plain)) < 1e-4, name


@pytest.mark.parametrize("precision", ["int4", "int8", "int4-a8"])
def test_fused_step_equals_the_python_step(family, precision):
    """The one-call C++ decode step against forward.decode_step at the same precision, step by step from the same
    cache (fp16, as used): the same kernels do the matmuls, so only float rounding differs. With int8 activations
    a last-bit difference before the rounding can move a value by one int8 step (~1% of it), which the random
    tiny models amplify (Gemma's extra norms most): those steps must agree within a few percent. Below AVX-512 the
    fp32 kernels sum a group as scale * sum(q x) + offset * sum(x), whose cancellation lets those roundings grow a
    little more (~1.1e-5 on Gemma's tiny configs)."""
    name, config, tensors, _ = family
    fused = DecoderRunner.from_tensors(config, tensors, precision)
    python = DecoderRunner.from_tensors(config, tensors, precision)
    python.native_enabled = False
    assert fused.path == "fused" and python.path == "python"
    worst = 0.0
    with torch.inference_mode():
        fused.prefill(0, IDS[:SPLIT])
        python.prefill(0, IDS[:SPLIT])
        for token in IDS[SPLIT:]:
            fused.k.copy_(python.k)  # the same state before every step: one step's differences only
            fused.v.copy_(python.v)
            got, want = fused.step([token], [0])[0], python.step([token], [0])[0]
            worst = max(worst, rel_error(got, want))
    if precision.endswith("-a8"):
        assert worst < 6e-2, (name, worst)
    else:
        per_weight = kernels.build_info().get("isa", "").startswith("avx512")
        assert worst < (1e-5 if per_weight else 3e-5), (name, worst)


def test_int16_activations_stay_within_their_rounding(family):
    """Where decode rounds fp32 activations to int16 (AVX512-VNNI): the fused step against the Python step with
    exact fp32 x, one step at a time from the same cache: within a few int16 steps (~1.5e-5 each, amplified by the
    tiny random models), and the same next token."""
    name, config, tensors, _ = family
    fused = DecoderRunner.from_tensors(config, tensors, "int4")
    exact = DecoderRunner.from_tensors(config, tensors, "int4")
    exact.native_enabled = False
    with int4_kernel.exact_fp32(False):
        if int4_kernel.fp32_x_bits() != 16:
            pytest.skip("this CPU multiplies fp32 x as is (no AVX512-VNNI)")
    worst = 0.0
    with torch.inference_mode():
        fused.prefill(0, IDS[:SPLIT])
        exact.prefill(0, IDS[:SPLIT])
        for token in IDS[SPLIT:]:
            fused.k.copy_(exact.k)
            fused.v.copy_(exact.v)
            with int4_kernel.exact_fp32(False):
                got = fused.step([token], [0])[0]
            want = exact.step([token], [0])[0]
            worst = max(worst, rel_error(got, want))
            assert int(got.argmax()) == int(want.argmax()), name
    assert 0 < worst < 2e-3, (name, worst)


def test_reduced_prefill_stays_within_its_rounding(family):
    """Where prefill's GEMM runs in bf16 (AVX512-BF16) or in integers on int4 weights' x rounded to int8 (AVX2): the
    prompt's logits against the fp32 GEMM's, within a few bf16 roundings (2^-9 each) or int8 steps (~4e-3 of a
    group's largest value each), amplified by the tiny random models, and the same next token."""
    name, config, tensors, _ = family
    with int4_kernel.exact_fp32(False):
        gemm = int4_kernel.prefill_gemm()
    if gemm == "fp32":
        pytest.skip("this CPU runs prefill's GEMM in fp32 (no AVX512-BF16, no AVX2)")
    r = DecoderRunner.from_tensors(config, tensors, "int4")
    with torch.inference_mode():
        want = r.prefill(0, IDS, reuse=False)
        with int4_kernel.exact_fp32(False):
            got = r.prefill(0, IDS, reuse=False)
    assert 0 < rel_error(got, want) < (2e-2 if gemm == "bf16" else 5e-2), (name, gemm, rel_error(got, want))
    assert int(got.argmax()) == int(want.argmax()), name


def test_batched_step_equals_one_sequence_at_a_time(family):
    """Three sequences in three slots at different positions, stepped together, give each one's own logits."""
    name, config, tensors, _ = family
    r = DecoderRunner.from_tensors(config, tensors, "int4")
    prompts = [IDS[:12], IDS[5:30], IDS[20:27]]
    with torch.inference_mode():
        for slot, ids in enumerate(prompts):
            r.prefill(slot, ids)
        batched = [r.step([IDS[40 + j], IDS[30 + j], IDS[10 + j]], [0, 1, 2]) for j in range(4)]
        alone = []
        for slot, ids in enumerate(prompts):
            one = DecoderRunner.from_tensors(config, tensors, "int4")
            one.prefill(0, ids)
            alone.append(torch.stack([one.step([[IDS[40 + j], IDS[30 + j], IDS[10 + j]][slot]], [0])[0]
                                      for j in range(4)]))
    for slot in range(3):
        got = torch.stack([b[slot] for b in batched])
        assert rel_error(got, alone[slot]) < 2e-6, (name, slot)


def test_fork_copies_a_prefix_into_another_slot(family):
    name, config, tensors, _ = family
    r = DecoderRunner.from_tensors(config, tensors, "int8")
    with torch.inference_mode():
        r.prefill(0, IDS[:20])
        r.fork(0, 1)
        forked = r.prefill(1, IDS[:26], checkpoints=(20,))  # reused chunk for chunk (engine/fast/chunks.py)
        assert r.reused == 20
        fresh = DecoderRunner.from_tensors(config, tensors, "int8").prefill(0, IDS[:26], checkpoints=(20,))
        assert torch.equal(forked, fresh), name  # same chunks: the same numbers, bit for bit
    assert rel_error(forked, fresh) < 1e-5, name


@pytest.mark.parametrize("name", ["llama3.2", "gemma2", "qwen3"])
def test_fused_step_equals_the_python_step_at_a_long_context(name):
    """Past 1,000 tokens the C++ attention splits each row's keys into chunks of 512 over threads (flash-decoding,
    SIMD dot products and exp) and merges them; two slots at different long positions decode in one call. It must
    still equal the torch step (softmax over the whole context at once)."""
    config, cls = _family(name)
    config.max_position_embeddings = 2048
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    tensors = dict(cls(config).state_dict())
    ids = torch.randint(3, 300, (1200,), generator=torch.Generator().manual_seed(2)).tolist()
    fused = DecoderRunner.from_tensors(config, tensors, "int4")
    python = DecoderRunner.from_tensors(config, tensors, "int4")
    python.native_enabled = False
    assert fused.path == "fused"
    worst = 0.0
    with torch.inference_mode():
        for r in (fused, python):
            r.prefill(0, ids[:1100])
            r.prefill(1, ids[:700])
        for i in range(4):
            fused.k.copy_(python.k)
            fused.v.copy_(python.v)
            tokens, slots = [ids[1100 + i], ids[700 + i]], [0, 1]
            worst = max(worst, rel_error(fused.step(tokens, slots), python.step(tokens, slots)))
    assert worst < 1e-5, (name, worst)
