"""Tiny GGUF files written from tiny transformers models the way llama.cpp's converter writes them.

What the converter does (``convert_hf_to_gguf.py``, checked there): renames tensors (``blk.N.attn_q`` ...),
permutes the rows of llama's q_proj / k_proj per head for ggml's RoPE, stores Gemma's norm weights + 1, keeps
Phi-3's fused qkv / gate_up, turns Llama 3 RoPE scaling into a ``rope_freqs`` tensor, and writes the family's
metadata keys. Written independently of the loader (no shared tables), so a loader test against these files
checks the loader against the converter, not against itself.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

# HF module suffix -> GGUF tensor name stem, per family (llama.cpp's gguf-py tensor_mapping for these archs).
_COMMON = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
           "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate",
           "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down", "post_attention_layernorm": "ffn_norm",
           "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm"}
_GEMMA = {**_COMMON, "post_attention_layernorm": "post_attention_norm", "pre_feedforward_layernorm": "ffn_norm",
          "post_feedforward_layernorm": "post_ffw_norm"}
_PHI3 = {**_COMMON, "self_attn.qkv_proj": "attn_qkv", "mlp.gate_up_proj": "ffn_up"}
ARCH = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "gemma2": "gemma2", "gemma3_text": "gemma3",
        "phi3": "phi3"}


def tiny_model(family: str, **overrides: Any) -> Any:
    """A random fp32 transformers model of ``family`` (seeded), small enough for the default suite."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    base: dict[str, Any] = dict(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                rms_norm_eps=1e-6, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
                                pad_token_id=0)
    if family == "llama":
        base.update(rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                                     "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 8192})  # Llama 3.2's
    elif family == "qwen2":
        base.update(rope_parameters={"rope_type": "default", "rope_theta": 1e6}, tie_word_embeddings=True)
    elif family == "qwen3":
        base.update(head_dim=32, rope_parameters={"rope_type": "default", "rope_theta": 1e6})
    elif family == "gemma2":
        base.update(head_dim=16, sliding_window=4, query_pre_attn_scalar=16, tie_word_embeddings=True,
                    attn_logit_softcapping=50.0, final_logit_softcapping=30.0)
    elif family == "gemma3_text":
        base.update(head_dim=16, sliding_window=4, query_pre_attn_scalar=16, num_hidden_layers=6,
                    tie_word_embeddings=True, rope_parameters={
                        "full_attention": {"rope_type": "default", "rope_theta": 1e6},
                        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}})
    elif family == "phi3":
        base.update(rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, sliding_window=None,
                    original_max_position_embeddings=256)
    base.update(overrides)
    config = AutoConfig.for_model(family, **base)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).float().eval()
    with torch.no_grad():  # norms away from 1 (their init), so a lost "+1" or a swapped norm shows
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith(".bias"):
                p.add_(torch.randn_like(p) * 0.3)
    return model


def rel_error(a: Any, b: Any) -> float:
    """The largest difference between two tensors of logits, relative to the largest magnitude of ``b``."""
    return float((a - b).abs().max() / b.abs().max())


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's LlamaModel.permute: per head, rows (2, d/2) -> (d/2, 2)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _llama3_factors(rope: dict[str, Any], dim: int) -> np.ndarray:
    """llama.cpp's converter: the rope_freqs tensor for llama 3 RoPE scaling."""
    freqs = 1.0 / (rope["rope_theta"] ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    orig = rope["original_max_position_embeddings"]
    low, high, factor = rope["low_freq_factor"], rope["high_freq_factor"], rope["factor"]
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < orig / high:
            out.append(1.0)
        elif wavelen > orig / low:
            out.append(factor)
        else:
            smooth = (orig / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


MERGES = ("Ġ t", "h e", "Ġt he")  # the byte-level vocabulary's merges: each makes one of its tokens


def write_gguf(model: Any, path: Path, quant: str = "F32", arch: str | None = None,
               drop: tuple[str, ...] = (), split_max_tensors: int = 0, merges: tuple[str, ...] = MERGES,
               extra: dict[str, np.ndarray] | None = None, ollama: bool = False) -> Path:
    """Write ``model`` as llama.cpp's converter would; 2-D weights as ``quant`` (F32, F16, BF16, Q8_0, Q4_0, ...;
    K-quants as random blocks); ``arch`` overrides the architecture written; the HF tensors whose names start
    with one of ``drop`` are left out (a broken file); ``split_max_tensors``: written as gguf-split writes a split
    model, that many tensors a part (``path``'s stem-00001-of-0000N.gguf, ...; the first part returned); ``merges``:
    the byte-level vocabulary's merges (others than these make tokens it lacks: a malformed file); ``extra``: more
    tensors by GGUF name, written as they are (a vision tower's, say); ``ollama``: Gemma 3's keys as Ollama writes
    them (rope.global / rope.local.freq_base, no layer_norm_rms_epsilon)."""
    import gguf

    cfg = model.config
    family = cfg.model_type
    w = gguf.GGUFWriter(str(path), arch or ARCH[family], split_max_tensors=split_max_tensors)
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    rope = cfg.rope_parameters.get("full_attention", cfg.rope_parameters)
    local = cfg.rope_parameters.get("sliding_attention", {}).get("rope_theta")
    if ollama:
        w.add_float32("gemma3.rope.global.freq_base", rope["rope_theta"])
        w.add_float32("gemma3.rope.local.freq_base", local)
    else:
        w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
        w.add_rope_freq_base(rope["rope_theta"])
        if family == "gemma3_text":
            w.add_float32("gemma3.rope.freq_base_swa", local)
    if family in ("qwen3", "gemma2", "gemma3_text"):
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    if family in ("llama", "phi3"):
        w.add_rope_dimension_count(head_dim)
    if family == "llama":
        w.add_vocab_size(cfg.vocab_size)
    if family in ("gemma2", "gemma3_text"):
        w.add_sliding_window(cfg.sliding_window)
    if family == "gemma2":
        w.add_attn_logit_softcapping(cfg.attn_logit_softcapping)
        w.add_final_logit_softcapping(cfg.final_logit_softcapping)
    if family == "phi3":
        w.add_rope_scaling_orig_ctx_len(cfg.original_max_position_embeddings)
        w.add_sliding_window(cfg.sliding_window or 0)
    _byte_vocab(w, cfg.vocab_size, merges)
    names = _COMMON if family in ("llama", "qwen2", "qwen3") else _GEMMA if family.startswith("gemma") else _PHI3
    if rope.get("rope_type") == "llama3":
        w.add_tensor("rope_freqs.weight", _llama3_factors(rope, head_dim))
    for hf, t in model.state_dict().items():
        data = t.detach().float().numpy().copy()
        if (hf == "lm_head.weight" and cfg.tie_word_embeddings) or hf.startswith(drop or ("\0",)):
            continue
        if family.startswith("gemma") and hf.endswith("norm.weight"):
            data = data + 1
        if hf == "model.embed_tokens.weight":
            name = "token_embd.weight"
        elif hf == "model.norm.weight":
            name = "output_norm.weight"
        elif hf == "lm_head.weight":
            name = "output.weight"
        else:
            _, _, layer, rest = hf.split(".", 3)
            module, kind = rest.rsplit(".", 1)
            name = f"blk.{layer}.{names[module]}.{kind}"
            if family == "llama" and module == "self_attn.q_proj":
                data = _permute(data, heads)
            elif family == "llama" and module == "self_attn.k_proj":
                data = _permute(data, kv)
        _add(w, name, data, quant)
    for name, data in (extra or {}).items():
        w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return min(path.parent.glob(f"{path.stem}-00001-of-*.gguf")) if split_max_tensors else path


def header_only_gguf(path: Path, sizes: bool = True, name: str | None = None, kind: str | None = None,
                     arch: str = "llama") -> Path:
    """A valid GGUF holding no tensors: with ``sizes`` (a llama model's), a model file as far as adding it goes
    (loading it fails, as it should); without, not even that. ``name``: its ``general.name``; ``kind``: its
    ``general.type`` (model, adapter, mmproj)."""
    import gguf

    w = gguf.GGUFWriter(str(path), arch)
    if name is not None:
        w.add_name(name)
    if kind is not None:
        w.add_type(kind)
    if sizes:
        w.add_embedding_length(64)
        w.add_head_count(4)
        w.add_block_count(2)
        w.add_feed_forward_length(128)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


# Where each block type keeps its fp16 scale(s) (byte offsets), and the magnitude given to them in random blocks
# so that the weights come out ~0.01-0.1, as in a real model.
_HALVES = {"Q4_0": {0: 2e-2}, "Q4_1": {0: 1e-2, 2: -5e-2}, "Q5_0": {0: 1e-2}, "Q5_1": {0: 5e-3, 2: -5e-2},
           "Q8_0": {0: 1e-3}, "Q4_K": {0: 2e-4, 2: 2e-4}, "Q5_K": {0: 1e-4, 2: 2e-4}, "Q6_K": {208: 3e-5},
           "Q2_K": {80: 1e-3, 82: 5e-4}, "Q3_K": {108: 1e-3},
           "IQ4_NL": {0: 1e-3}, "IQ4_XS": {0: 1e-4}, "IQ2_XXS": {0: 1e-3}}


def random_blocks(rows: int, k: int, quant: str, seed: int = 0) -> np.ndarray:
    """A [rows, bytes] uint8 tensor of ``quant`` blocks with random bits and small random fp16 scales (what no
    Python quantizer writes for K-quants: their values need not come from a model, only be valid blocks)."""
    import gguf

    qtype = gguf.GGMLQuantizationType[quant]
    per, size = gguf.GGML_QUANT_SIZES[qtype]
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (rows, k // per, size), dtype=np.uint8)
    for at, scale in _HALVES[quant].items():
        half = (scale * rng.uniform(0.5, 1.0, (rows, k // per, 1))).astype(np.float16)
        blocks[..., at:at + 2] = half.view(np.uint8)
    return blocks.reshape(rows, -1)


def _add(w: Any, name: str, data: np.ndarray, quant: str) -> None:
    import gguf

    if data.ndim < 2 or quant == "F32":
        w.add_tensor(name, data.astype(np.float32))
    elif quant in ("F16", "BF16"):
        qtype = gguf.GGMLQuantizationType[quant]
        w.add_tensor(name, gguf.quantize(data, qtype), raw_dtype=qtype)
    else:
        qtype = gguf.GGMLQuantizationType[quant]
        per = gguf.GGML_QUANT_SIZES[qtype][0]
        if data.shape[1] % per:  # as llama.cpp's quantizer: a row that is not whole blocks takes Q8_0
            qtype, quant = gguf.GGMLQuantizationType.Q8_0, "Q8_0"
        if quant in _HALVES and quant not in ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"):
            # no Python quantizer for these: random blocks (the file, not the model, is the reference)
            seed = sum(name.encode())
            w.add_tensor(name, random_blocks(data.shape[0], data.shape[1], quant, seed), raw_dtype=qtype)
        else:
            w.add_tensor(name, gguf.quantize(data, qtype), raw_dtype=qtype)


def _byte_vocab(w: Any, size: int, merges: tuple[str, ...]) -> None:
    """A byte-level BPE vocabulary: <pad>, <s>, </s> (control) and the 256 byte symbols, a few merges, padded to
    the embedding's rows with unused ``[PADn]`` tokens (as the converter pads)."""
    from tokenizers import pre_tokenizers

    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = ["<pad>", "<s>", "</s>", *symbols, "Ġt", "he", "Ġthe"]
    used = len(tokens)
    tokens += [f"[PAD{i}]" for i in range(size - used)]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")  # what the converter writes for a GPT-2 vocabulary (llama.cpp refuses "gpt2")
    w.add_token_list(tokens)
    w.add_token_types([3, 3, 3] + [1] * (used - 3) + [5] * (len(tokens) - used))
    w.add_token_merges(list(merges))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)


def fused_against_exact(tm: Any, ids: list[int], prompt: int = 20) -> tuple[Any, Any]:
    """A loaded model's fused-path logits for ``ids`` (the first ``prompt`` prefilled, the rest decoded one by one)
    as it runs, and the same with the kernels' exact fp32 arithmetic (x never rounded): [len(ids) - prompt + 1,
    vocab] each."""
    import torch

    from playground.engine.fast import int4_kernel

    def logits() -> torch.Tensor:
        with torch.inference_mode():
            rows = [tm.fast.prefill(0, ids[:prompt], reuse=False)]
            rows += [tm.fast.step([t], [0])[0] for t in ids[prompt:]]
        return torch.stack(rows)

    fast = logits()
    with int4_kernel.exact_fp32():
        return fast, logits()
