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


def write_gguf(model: Any, path: Path, quant: str = "F32") -> Path:
    """Write ``model`` as llama.cpp's converter would; 2-D weights as ``quant`` (F32, F16, Q8_0, Q4_0, ...)."""
    import gguf

    cfg = model.config
    family = cfg.model_type
    arch = ARCH[family]
    w = gguf.GGUFWriter(str(path), arch)
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    rope = cfg.rope_parameters.get("full_attention", cfg.rope_parameters)
    w.add_rope_freq_base(rope["rope_theta"])
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
    _byte_vocab(w)
    names = _COMMON if family in ("llama", "qwen2", "qwen3") else _GEMMA if family.startswith("gemma") else _PHI3
    if rope.get("rope_type") == "llama3":
        w.add_tensor("rope_freqs.weight", _llama3_factors(rope, head_dim))
    for hf, t in model.state_dict().items():
        data = t.detach().float().numpy().copy()
        if hf == "lm_head.weight" and cfg.tie_word_embeddings:
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
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _add(w: Any, name: str, data: np.ndarray, quant: str) -> None:
    import gguf

    if data.ndim < 2 or quant == "F32":
        w.add_tensor(name, data.astype(np.float32))
    elif quant == "F16":
        w.add_tensor(name, data.astype(np.float16))
    else:
        qtype = gguf.GGMLQuantizationType[quant]
        w.add_tensor(name, gguf.quantize(data, qtype), raw_dtype=qtype)


def _byte_vocab(w: Any) -> None:
    """A byte-level BPE vocabulary: <pad>, <s>, </s> (control) and the 256 byte symbols, a few merges."""
    from tokenizers import pre_tokenizers

    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = ["<pad>", "<s>", "</s>", *symbols, "Ġt", "he", "Ġthe"]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([3, 3, 3] + [1] * (len(tokens) - 3))
    w.add_token_merges(["Ġ t", "h e", "Ġt he"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
