"""What a decoder family computes, read from its transformers config: one description for every family the fast
runner covers (Llama 2/3 incl. 3.2, Mistral, Qwen2/2.5, Qwen3, Gemma 2/3, Phi-3, SmolLM — Llama-shaped).

The runner (``runner.py``, ``forward.py``, the C++ step) is written once against ``Arch``; a family is a set of
switches here: norm style, biases, QK-norm, four norms per layer, activation, soft-capping, sliding windows and the
rope table each layer uses. Anything not covered gives ``Unsupported`` with the reason (the engine then takes the
generic path or transformers' own forward).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3")
GEMMA = ("gemma2", "gemma3_text")
_STATIC_ROPE = ("default", "linear", "llama3", "yarn", "proportional")
_ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu_pytorch_tanh": "gelu_tanh", "gelu_tanh": "gelu_tanh"}


class Unsupported(ValueError):
    """This config is outside what the fast runner computes; the message says what."""


@dataclass(frozen=True)
class Arch:
    family: str
    vocab: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv: int
    head_dim: int
    inter: int
    eps: float
    act: str  # "silu" | "gelu_tanh"
    norm_plus_one: bool  # Gemma's RMSNorm multiplies by (1 + w)
    sandwich: bool  # Gemma 2/3: norms after attention and after the MLP too (four per layer)
    qk_norm: bool  # Qwen3, Gemma 3: RMSNorm over each head of q and k before rope
    attn_scale: float
    attn_softcap: float  # 0: none (Gemma 2: tanh soft-capping of the attention scores)
    final_softcap: float  # 0: none
    embed_scale: float  # 1.0, or sqrt(dim) for Gemma
    windows: tuple[int, ...]  # per layer: sliding window (keys visible: pos - window < k <= pos); 0 = global
    rope_kinds: tuple[str, ...]  # per layer: which rope table ("" when one table serves all)
    rotary_dim: int  # dims of each head that rope rotates (Phi-3 variants rotate a part)
    max_positions: int
    tied: bool

    @property
    def q_width(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def kv_width(self) -> int:
        return self.n_kv * self.head_dim


def arch_from_config(config: Any) -> Arch:
    """The ``Arch`` of a transformers config (``PretrainedConfig``); raises ``Unsupported`` with the reason."""
    family = getattr(config, "model_type", None)
    if family not in FAMILIES:
        raise Unsupported(f"architecture {family} has no fused fast path")
    if getattr(config, "use_bidirectional_attention", False):
        raise Unsupported("bidirectional attention is not a causal decoder")
    act_name = getattr(config, "hidden_activation", None) or getattr(config, "hidden_act", "silu")
    act = _ACTIVATIONS.get(act_name)
    if act is None:
        raise Unsupported(f"activation {act_name} is not supported by the fast path")
    n_heads = int(config.num_attention_heads)
    n_kv = int(getattr(config, "num_key_value_heads", None) or n_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // n_heads)
    if n_heads % n_kv or head_dim % 2:
        raise Unsupported(f"{n_heads} heads over {n_kv} kv heads of dim {head_dim} is not supported")
    n_layers = int(config.num_hidden_layers)
    gemma = family in GEMMA
    windows, kinds = _windows_and_rope_kinds(config, n_layers)
    for kind in set(kinds):
        rope_type = _rope_params(config, kind).get("rope_type", "default")
        if rope_type not in (*_STATIC_ROPE, "longrope"):
            raise Unsupported(f"{rope_type} RoPE scaling is not supported by the fast path")
    partial = float(_rope_params(config, kinds[0]).get("partial_rotary_factor", 1.0) or 1.0)
    rotary_dim = int(head_dim * partial)
    if rotary_dim % 2:
        raise Unsupported(f"a rotary dimension of {rotary_dim} is not supported")
    scalar = getattr(config, "query_pre_attn_scalar", None) if gemma else None
    return Arch(
        family=family, vocab=int(config.vocab_size), dim=int(config.hidden_size), n_layers=n_layers,
        n_heads=n_heads, n_kv=n_kv, head_dim=head_dim, inter=int(config.intermediate_size),
        eps=float(config.rms_norm_eps), act=act, norm_plus_one=gemma, sandwich=gemma,
        qk_norm=family in ("qwen3", "gemma3_text"),
        attn_scale=float(scalar) ** -0.5 if scalar else head_dim ** -0.5,
        attn_softcap=float(getattr(config, "attn_logit_softcapping", None) or 0.0) if family == "gemma2" else 0.0,
        final_softcap=float(getattr(config, "final_logit_softcapping", None) or 0.0),
        embed_scale=_gemma_embed_scale(config.hidden_size) if gemma else 1.0,
        windows=windows, rope_kinds=kinds, rotary_dim=rotary_dim,
        max_positions=int(getattr(config, "max_position_embeddings", 0) or 0) or 1 << 30,
        tied=bool(getattr(config, "tie_word_embeddings", False)))


def _gemma_embed_scale(dim: int) -> float:
    """sqrt(dim) as transformers applies it: a float32 tensor (so the same rounding)."""
    import torch

    return float(torch.tensor(dim**0.5, dtype=torch.float32))


def _windows_and_rope_kinds(config: Any, n_layers: int) -> tuple[tuple[int, ...], tuple[str, ...]]:
    window = int(getattr(config, "sliding_window", None) or 0)
    types = getattr(config, "layer_types", None)
    params = getattr(config, "rope_parameters", None) or {}
    per_type = isinstance(params.get("full_attention"), dict) or isinstance(params.get("sliding_attention"), dict)
    if types:
        windows = tuple(window if t == "sliding_attention" else 0 for t in types)
        if any(t not in ("sliding_attention", "full_attention") for t in types):
            raise Unsupported(f"layer types {sorted(set(types))} are not supported by the fast path")
    else:  # Mistral, Phi-3: one window (or none) for every layer
        windows = (window,) * n_layers
    kinds = tuple(types) if per_type else ("",) * n_layers
    return windows, kinds


def _rope_params(config: Any, kind: str) -> dict[str, Any]:
    params = getattr(config, "rope_parameters", None) or {}
    if kind:
        return dict(params.get(kind) or {})
    return dict(params)


def rope_tables(config: Any, arch: Arch, positions: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per rope kind: (cos, sin with its first half negated), float32 [positions, rotary_dim], computed as
    transformers computes them (float32 position * inv_freq, then cos/sin, times the attention scaling)."""
    import torch

    tables = {}
    for kind in sorted(set(arch.rope_kinds)):
        inv_freq, scaling = _inv_freq(config, arch, kind)
        freqs = torch.arange(positions, dtype=torch.float32)[:, None] * inv_freq[None].float()
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos() * scaling, emb.sin() * scaling
        half = arch.rotary_dim // 2
        tables[kind] = (cos.contiguous(), torch.cat([-sin[:, :half], sin[:, half:]], dim=-1).contiguous())
    return tables


def _inv_freq(config: Any, arch: Arch, kind: str) -> tuple[torch.Tensor, float]:
    import torch

    params = _rope_params(config, kind)
    rope_type = params.get("rope_type", "default")
    if rope_type == "default":
        base = float(params.get("rope_theta", getattr(config, "rope_theta", 10000.0)))
        dim = arch.rotary_dim
        return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float) / dim)), 1.0
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    fn = ROPE_INIT_FUNCTIONS[rope_type]
    inv_freq, scaling = fn(config, None, layer_type=kind) if kind else fn(config, None)
    return inv_freq.float(), float(scaling)


def fused_context_limit(config: Any, arch: Arch) -> int:
    """Positions the rope tables are valid for: longrope switches tables past its original length (not done
    here), so those models are held to it."""
    limit = arch.max_positions
    for kind in set(arch.rope_kinds):
        if _rope_params(config, kind).get("rope_type") == "longrope":
            original = getattr(config, "original_max_position_embeddings", None) or limit
            limit = min(limit, int(original))
    return limit
