"""From a GGUF file's metadata to the Hugging Face config and parameter names of its family, and what llama.cpp's
converter (``convert_hf_to_gguf.py``) changed in the tensors that has to be undone.

Facts checked in llama.cpp's converter and model loaders (``src/models/*.cpp``) and in transformers'
``modeling_gguf_pytorch_utils.py``:
- llama (Llama 2/3/3.2, SmolLM, Mistral): the converter permutes the rows of ``q_proj`` and ``k_proj`` (weights and
  biases) per head, (2, d/2) -> (d/2, 2), for ggml's RoPE layout; ``undo_rows`` gives the inverse. Llama 3 RoPE
  scaling is not in the metadata: it is the ``rope_freqs`` tensor (1, the factor, or a blend per frequency),
  fitted back to (factor, low/high frequency factors, original context) here.
- qwen2 / qwen3 / phi3: tensors unchanged; Phi-3's fused ``qkv_proj`` and ``gate_up_proj`` stay fused
  (``attn_qkv``, ``ffn_up``); Phi-3 long RoPE factors are the ``rope_factors_long/short`` tensors.
- gemma2 / gemma3: every ``*norm.weight`` is stored +1 (HF's Gemma RMSNorm multiplies by 1 + w); the sliding-window
  layer pattern is not stored by older files: llama.cpp assumes every 2nd (Gemma 2) / 6th (Gemma 3) layer global;
  the local RoPE base defaults to 10,000 (Gemma 3); the attention scale is 1/sqrt(head_dim), except the 27B models
  (46 / 62 layers): 1/sqrt(hidden / heads); soft-capping defaults 50 / 30 (Gemma 2), none (Gemma 3).
- Ollama's own Gemma 3 files: the RoPE bases as ``rope.global.freq_base`` / ``rope.local.freq_base``, the norms'
  epsilon left out (1e-6), the vision tower and projector in the same file (``v.*``, ``mm.*``; left out here).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from playground.errors import DamagedModel, UnsupportedModel

FAMILIES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM",
            "gemma2": "Gemma2ForCausalLM", "gemma3": "Gemma3ForCausalLM", "phi3": "Phi3ForCausalLM"}
_GEMMA = ("gemma2", "gemma3")
# Tensors that only carry configuration (read into the config, not parameters of the HF model).
CONFIG_TENSORS = ("rope_freqs.weight", "rope_factors_long.weight", "rope_factors_short.weight")
# A vision tower and its projector inside the language model's own file (Ollama writes Gemma 3's that way; llama.cpp
# keeps them in a separate mmproj file): left out, the text model runs alone.
VISION_PREFIXES = ("v.", "mm.")


def text_tensors(names: Any) -> list[str]:
    """The names of the tensors the text model is made of: neither configuration nor a vision tower's."""
    return [n for n in names if n not in CONFIG_TENSORS and not n.startswith(VISION_PREFIXES)]

_TOP = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight"}
_BLOCK = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
          "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "attn_qkv": "self_attn.qkv_proj",
          "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm", "ffn_gate": "mlp.gate_proj",
          "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj", "ffn_norm": "post_attention_layernorm",
          "post_attention_norm": "post_attention_layernorm", "post_ffw_norm": "post_feedforward_layernorm"}
_BLOCK_BY_FAMILY = {"gemma2": {"ffn_norm": "pre_feedforward_layernorm"},
                    "gemma3": {"ffn_norm": "pre_feedforward_layernorm"},
                    "phi3": {"ffn_up": "mlp.gate_up_proj"}}


def family(metadata: dict[str, Any]) -> str:
    """The GGUF architecture, if this loader supports it; else UnsupportedModel naming it."""
    arch = str(metadata.get("general.architecture", "?"))
    kind = str(metadata.get("general.type", "model"))
    # Files beside a model in its repository, which no loader can run alone: refused as not models (DamagedModel:
    # not registered, no conversion tried), not sent to transformers' conversion to fail there.
    if kind == "adapter":
        raise DamagedModel("this GGUF is a LoRA adapter (general.type = adapter), not a model: load the model it "
                           "adapts")
    if kind == "mmproj" or arch == "clip":
        raise DamagedModel("this GGUF is a multimodal model's vision projector (mmproj), not a language model: load "
                           "the model file beside it")
    if arch not in FAMILIES:
        raise UnsupportedModel(f"GGUF architecture {arch!r} is not supported by the GGUF loader "
                               f"(supported: {', '.join(FAMILIES)})")
    return arch


def hf_name(gguf_name: str, arch: str) -> str:
    """``blk.3.attn_q.weight`` -> ``model.layers.3.self_attn.q_proj.weight``; UnsupportedModel for unknown names."""
    if gguf_name in _TOP:
        return _TOP[gguf_name]
    parts = gguf_name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[1].isdigit() and parts[3] in ("weight", "bias"):
        mapped = _BLOCK_BY_FAMILY.get(arch, {}).get(parts[2]) or _BLOCK.get(parts[2])
        if mapped:
            return f"model.layers.{parts[1]}.{mapped}.{parts[3]}"
    raise UnsupportedModel(f"GGUF tensor {gguf_name!r} has no place in a {arch} model (not supported)")


def undo_rows(gguf_name: str, arch: str, config: dict[str, Any], n_rows: int) -> Any:
    """The row order that undoes the converter's Q/K permutation (llama family), or None when rows are as in HF."""
    if arch != "llama" or not gguf_name.startswith("blk.") or not (".attn_q." in gguf_name or ".attn_k." in gguf_name):
        return None
    heads = config["num_attention_heads"] if ".attn_q." in gguf_name else config["num_key_value_heads"]
    half = n_rows // heads // 2
    # HF row (h, j, i) of head h, half j, index i sits at GGUF row h*d + 2i + j.
    return np.arange(n_rows).reshape(heads, half, 2).transpose(0, 2, 1).reshape(-1)


def norm_shift(gguf_name: str, arch: str) -> float:
    """What to add to a tensor to get HF's value: -1 for Gemma's norms (stored as 1 + w), else 0."""
    return -1.0 if arch in _GEMMA and gguf_name.endswith("norm.weight") else 0.0


def hf_config(metadata: dict[str, Any], shapes: dict[str, tuple[int, ...]],
              config_tensor: Any = lambda name: None) -> dict[str, Any]:
    """The HF config dict (transformers 5 field names) for this file. ``shapes``: GGUF tensor name -> numpy
    shape; ``config_tensor(name)``: a small tensor's values as a numpy array (rope factors), or None."""
    arch = family(metadata)

    def get(key: str, default: Any = None) -> Any:
        return metadata.get(f"{arch}.{key}", default)

    def need(key: str) -> int:  # a size the model cannot be built without
        value = get(key)
        if value is None:
            raise DamagedModel(f"the file's {arch}.{key} is missing: not a complete {arch} model")
        return _positive(arch, key, value)

    hidden, heads = need("embedding_length"), need("attention.head_count")
    kv = get("attention.head_count_kv", heads)
    if not isinstance(kv, int):  # an array: a head count per layer
        if len(set(int(v) for v in kv)) != 1:
            raise UnsupportedModel("GGUF with a different number of KV heads per layer is not supported")
        kv = int(kv[0])
    layers = need("block_count")
    if "token_embd.weight" not in shapes:
        raise UnsupportedModel("GGUF file has no token_embd.weight")
    _check_sizes(arch, hidden, heads, int(kv), shapes["token_embd.weight"], get("attention.key_length"))
    head_dim = int(get("attention.key_length", 0) or hidden // heads)
    cfg: dict[str, Any] = {
        "model_type": "gemma3_text" if arch == "gemma3" else arch,
        "architectures": [FAMILIES[arch]],
        "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": kv, "head_dim": head_dim,
        "intermediate_size": need("feed_forward_length"),
        "rms_norm_eps": float(get("attention.layer_norm_rms_epsilon", 1e-6)),
        "max_position_embeddings": _positive(arch, "context_length", get("context_length", 2048)),
        "vocab_size": int(shapes["token_embd.weight"][0]),
        "tie_word_embeddings": "output.weight" not in shapes,
        "torch_dtype": "float32",
    }
    for key, name in (("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id"),
                      ("pad_token_id", "padding_token_id")):
        if f"tokenizer.ggml.{name}" in metadata:
            cfg[key] = int(metadata[f"tokenizer.ggml.{name}"])
    # Ollama's Gemma 3 files name the bases rope.global / rope.local.freq_base, and its engine takes 1e6 for the
    # global one where neither is written (as Gemma 3's own config has it)
    theta = _positive(arch, "rope.freq_base", get("rope.freq_base", get("rope.global.freq_base",
                                                                     1e6 if arch == "gemma3" else 10000.0)),
                      whole=False)
    rope = _rope(metadata, arch, theta, head_dim, config_tensor)
    bias = "blk.0.attn_q.bias" in shapes
    if arch == "llama":
        cfg.update(hidden_act="silu", attention_bias=bias, mlp_bias="blk.0.ffn_down.bias" in shapes,
                   rope_parameters=rope)
    elif arch == "qwen2":
        del cfg["head_dim"]  # Qwen2 derives it from hidden_size / heads
        cfg.update(hidden_act="silu", rope_parameters=rope, use_sliding_window=False, sliding_window=None)
    elif arch == "qwen3":
        cfg.update(hidden_act="silu", rope_parameters=rope, attention_bias=bias, use_sliding_window=False,
                   sliding_window=None)
    elif arch == "phi3":
        cfg.update(_phi3(metadata, hidden, heads, theta, shapes, config_tensor))
        del cfg["head_dim"]
    else:
        cfg.update(_gemma(metadata, arch, layers, hidden, heads, head_dim, theta, rope))
    return cfg


def _check_sizes(arch: str, hidden: int, heads: int, kv: int, embd: tuple[int, ...], key_length: Any) -> None:
    """DamagedModel where the header's sizes cannot describe one model: KV heads that do not share the query
    heads out evenly, a width the embedding tensor does not have, or one the heads do not split."""
    if kv <= 0 or heads % kv:
        raise DamagedModel(f"the file's {arch}.attention.head_count_kv is {kv}, which does not divide its "
                           f"{heads} attention heads")
    if len(embd) != 2 or int(embd[1]) != hidden:
        raise DamagedModel(f"the file's {arch}.embedding_length is {hidden}, but its token_embd.weight holds "
                           f"{embd[-1]} values a token")
    if not key_length and hidden % heads:
        raise DamagedModel(f"the file's {arch}.embedding_length ({hidden}) is not a multiple of its {heads} "
                           "attention heads")


def _positive(arch: str, key: str, value: Any, whole: bool = True) -> Any:
    """``value`` (a header entry that has a default) where it is a positive finite number, else DamagedModel."""
    kinds = (int, np.integer) if whole else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or value <= 0:
        raise DamagedModel(f"the file's {arch}.{key} is {str(value)[:40]!r}, not a positive "
                           f"{'whole number' if whole else 'number'}")
    return int(value) if whole else float(value)


def _rope(metadata: dict[str, Any], arch: str, theta: float, head_dim: int, config_tensor: Any) -> dict[str, Any]:
    """rope_parameters of the global (full-attention) layers."""
    scaling = str(metadata.get(f"{arch}.rope.scaling.type", "none"))
    factor = float(metadata.get(f"{arch}.rope.scaling.factor", 1.0) or 1.0)
    if scaling == "linear" and factor != 1.0:
        return {"rope_type": "linear", "rope_theta": theta, "factor": factor}
    if scaling == "yarn":
        out = {"rope_type": "yarn", "rope_theta": theta, "factor": factor,
               "original_max_position_embeddings": int(metadata[f"{arch}.rope.scaling.original_context_length"])}
        for key, name in (("yarn_ext_factor", "extrapolation_factor"), ("yarn_attn_factor", "attention_factor"),
                          ("yarn_beta_fast", "beta_fast"), ("yarn_beta_slow", "beta_slow")):
            if f"{arch}.rope.scaling.{key}" in metadata:
                out[name] = float(metadata[f"{arch}.rope.scaling.{key}"])
        return out
    if scaling not in ("none", "linear"):
        raise UnsupportedModel(f"RoPE scaling {scaling!r} is not supported by the GGUF loader")
    freqs = config_tensor("rope_freqs.weight")
    if arch == "llama" and freqs is not None and not np.allclose(freqs, 1.0):
        return _llama3_rope(np.asarray(freqs, dtype=np.float64), theta, head_dim)
    return {"rope_type": "default", "rope_theta": theta}


def _llama3_rope(factors: np.ndarray, theta: float, head_dim: int) -> dict[str, Any]:
    """Llama 3 RoPE parameters from llama.cpp's per-frequency factors (1, the factor, or a blend between).

    With x = 1/wavelength, the blend is 1/f = (1 - s)/factor + s where s = A x + B is linear (A = orig / (high -
    low), B = -low / (high - low)); frequencies with s >= 1 keep factor 1, those with s <= 0 get the full factor.
    Only the resulting factors matter, so the published Llama 3 values (low 1, high 4, original context 8192)
    are tried first; else a line through the blended points (and between the unblended groups when fewer than two
    points are blended) is solved for, with low = 1, and checked to reproduce every factor."""
    if factors.size != head_dim // 2:
        raise DamagedModel(f"its rope_freqs tensor holds {factors.size} factors where a head of {head_dim} needs "
                           f"{head_dim // 2}")
    factor = float(factors.max())
    x = 1 / (2 * math.pi * theta ** (np.arange(0, head_dim, 2) / head_dim))

    def factors_for(low: float, high: float, orig: float) -> np.ndarray:
        s = (orig * x - low) / (high - low)
        return np.where(s >= 1, 1.0, np.where(s <= 0, factor, 1 / ((1 - s) / factor + s)))

    fail = UnsupportedModel("cannot recover the Llama 3 RoPE scaling from this file's rope_freqs tensor")
    params = (1.0, 4.0, 8192.0)
    if not np.allclose(factors_for(*params), factors, rtol=1e-4):
        if factor <= 1:
            raise fail
        mid = (factors > 1 + 1e-6) & (factors < factor - 1e-6)
        s_mid = (1 / factors[mid] - 1 / factor) / (1 - 1 / factor)
        x_full, x_one = x[factors >= factor - 1e-6], x[factors <= 1 + 1e-6]
        lo = float(x_full.max()) if x_full.size else 0.0  # s must be <= 0 up to here ...
        hi = float(x_one.min()) if x_one.size else float(x.max()) * 2  # ... and >= 1 from here
        if mid.sum() >= 2:
            slope, intercept = np.polyfit(x[mid], s_mid, 1)
        elif mid.sum() == 1:
            x0 = (lo + float(x[mid][0])) / 2  # s = 0 halfway to the blended point
            slope = float(s_mid[0]) / (float(x[mid][0]) - x0)
            intercept = -slope * x0
        else:  # s from 0 to 1 across the middle third of the gap
            slope = 3 / (hi - lo)
            intercept = -slope * (lo + (hi - lo) / 3)
        if intercept >= 0 or slope <= 0:
            raise fail
        high = 1 - 1 / intercept  # with low = 1: B = -1 / (high - 1), A = orig / (high - 1)
        params = (1.0, float(high), float(slope * (high - 1)))
        if not np.allclose(factors_for(*params), factors, rtol=1e-4):
            raise fail
    low, high, orig = params
    return {"rope_type": "llama3", "rope_theta": theta, "factor": factor, "low_freq_factor": low,
            "high_freq_factor": high,  # an integer context when the fit gives one (transformers checks the type)
            "original_max_position_embeddings": int(round(orig)) if abs(orig - round(orig)) < 1e-3 else orig}


def _phi3(metadata: dict[str, Any], hidden: int, heads: int, theta: float, shapes: dict[str, tuple[int, ...]],
          config_tensor: Any) -> dict[str, Any]:
    rot = int(metadata.get("phi3.rope.dimension_count", hidden // heads))
    orig = int(metadata.get("phi3.rope.scaling.original_context_length",
                            metadata.get("phi3.context_length", 4096)))
    rope: dict[str, Any] = {"rope_type": "default", "rope_theta": theta, "partial_rotary_factor": rot * heads / hidden}
    long, short = config_tensor("rope_factors_long.weight"), config_tensor("rope_factors_short.weight")
    if long is not None and short is not None:
        rope.update(rope_type="longrope", long_factor=[float(v) for v in long],
                    short_factor=[float(v) for v in short])
    window = int(metadata.get("phi3.attention.sliding_window", 0) or 0)
    return {"hidden_act": "silu", "rope_parameters": rope, "original_max_position_embeddings": orig,
            "sliding_window": window or None, "resid_pdrop": 0.0, "embd_pdrop": 0.0}


def _gemma(metadata: dict[str, Any], arch: str, layers: int, hidden: int, heads: int, head_dim: int, theta: float,
           rope: dict[str, Any]) -> dict[str, Any]:
    big = layers == (46 if arch == "gemma2" else 62)  # the 27B models scale queries by hidden / heads
    window = metadata.get(f"{arch}.attention.sliding_window")
    pattern = metadata.get(f"{arch}.attention.sliding_window_pattern", 2 if arch == "gemma2" else 6)
    if window is None and arch == "gemma2":
        window = 4096
    if not window:
        layer_types = ["full_attention"] * layers
    elif isinstance(pattern, (int, np.integer)):
        # llama.cpp: layer i is sliding unless i % pattern == pattern - 1 (pattern 0: all sliding)
        layer_types = ["sliding_attention" if pattern == 0 or i % pattern < pattern - 1 else "full_attention"
                       for i in range(layers)]
    else:
        layer_types = ["sliding_attention" if bool(v) else "full_attention" for v in pattern]
    out: dict[str, Any] = {
        "hidden_activation": "gelu_pytorch_tanh", "query_pre_attn_scalar": hidden // heads if big else head_dim,
        "sliding_window": int(window) if window else None, "layer_types": layer_types, "attention_bias": False,
    }
    if arch == "gemma2":
        out.update(rope_parameters=rope,
                   attn_logit_softcapping=float(metadata.get("gemma2.attn_logit_softcapping", 50.0)),
                   final_logit_softcapping=float(metadata.get("gemma2.final_logit_softcapping", 30.0)))
    else:
        local = float(metadata.get("gemma3.rope.freq_base_swa", metadata.get("gemma3.rope.local.freq_base", 10000.0)))
        out.update(rope_parameters={"full_attention": rope,
                                    "sliding_attention": {"rope_type": "default", "rope_theta": local}},
                   attn_logit_softcapping=None,
                   final_logit_softcapping=float(metadata["gemma3.final_logit_softcapping"])
                   if metadata.get("gemma3.final_logit_softcapping") else None)
    return out
