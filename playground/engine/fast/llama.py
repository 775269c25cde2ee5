"""A lean forward pass for Llama-shaped models (SmolLM2, Llama, Mistral without sliding windows).

Why not the transformers module: at batch 1 a decode step of a 135M model is a few milliseconds of arithmetic but
~hundreds of small Python-level module calls; here one step is a flat loop over layers with fused QKV and gate/up
weights, quantized decode weights (``quant.QLinear``), GQA as one ``bmm`` on a view (no repeat) and a static KV
cache written in place. Prefill runs the model's own fp32 weights in chunks (fast as a batched matmul), decode runs
the quantized weights. Numbers match transformers' Llama in fp32 (tested).

The cache lives in this object: ``prefill`` starts a sequence, ``step`` appends one token, ``rewind`` goes back to
an earlier length (n completions share a prompt without copying: positions before the rewind point are intact).
``prefill`` reuses the longest prefix it already holds from an earlier prefill, so a new prompt after the same
source text (or the next column of a comparison) only runs its new tokens. Positions written by decode steps are
never reused: they were computed with the quantized weights, and a prompt must give the same result whatever ran
before it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground.domain.jobs import ProgressEvent
from playground.engine.fast.quant import QLinear

if TYPE_CHECKING:
    import torch

PREFILL_CHUNK = 512  # bounds the [heads, chunk, context] attention scores of a long prompt
MIN_CACHE = 256


def unsupported_reason(model: Any) -> str | None:
    """None when this module can run ``model``; else why not (the engine then uses transformers' forward)."""
    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) not in ("llama", "mistral"):
        return f"architecture {getattr(cfg, 'model_type', '?')} has no fast path"
    if getattr(cfg, "attention_bias", False) or getattr(cfg, "mlp_bias", False):
        return "biases in attention/MLP are not supported by the fast path"
    if getattr(cfg, "sliding_window", None):
        return "sliding-window attention is not supported by the fast path"
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return f"activation {cfg.hidden_act} is not supported by the fast path"
    rope = getattr(cfg, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") == "dynamic":
        return "dynamic RoPE scaling is not supported by the fast path"
    return None


@dataclass
class _Layer:
    in_norm: torch.Tensor
    post_norm: torch.Tensor
    q_w: torch.Tensor  # fp32 views for prefill
    k_w: torch.Tensor
    v_w: torch.Tensor
    o_w: torch.Tensor
    gate_w: torch.Tensor
    up_w: torch.Tensor
    down_w: torch.Tensor
    qkv: QLinear  # fused, quantized: decode
    o: QLinear
    gate_up: QLinear
    down: QLinear


class FastLlama:
    def __init__(self, model: Any, precision: str, store: Path | None = None,
                 on_progress: Callable[[ProgressEvent], None] = lambda e: None) -> None:
        """``store``: a file to keep the quantized weights in; quantizing a 135M model takes seconds, reading
        them back a fraction of that (see ``store.py``)."""
        import torch

        reason = unsupported_reason(model)
        if reason:
            raise ValueError(reason)
        cfg = model.config
        self.precision = precision
        self.device = next(model.parameters()).device
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.eps = float(cfg.rms_norm_eps)
        self.max_positions = int(cfg.max_position_embeddings)
        inner = model.model
        self.embed = inner.embed_tokens.weight  # fp32 [V, D], shared with the model
        self.final_norm = inner.norm.weight.float()
        self._rotary = inner.rotary_emb
        # What decode multiplies by, per name: a function giving the fp32 weight (only called when quantizing).
        sources: dict[str, Callable[[], torch.Tensor]] = {}
        fp32_views = []
        for i, block in enumerate(inner.layers):
            att, mlp = block.self_attn, block.mlp
            if precision == "fp32":  # fuse in place: the model's own parameters become views of the fused copy
                qkv_w, ws = _fuse_in_place([att.q_proj, att.k_proj, att.v_proj])
                gate_up_w, gate_up = _fuse_in_place([mlp.gate_proj, mlp.up_proj])
                sources[f"{i}.qkv"], sources[f"{i}.gate_up"] = (lambda w=qkv_w: w), (lambda w=gate_up_w: w)
            else:
                ws = [att.q_proj.weight, att.k_proj.weight, att.v_proj.weight]
                gate_up = [mlp.gate_proj.weight, mlp.up_proj.weight]
                sources[f"{i}.qkv"] = lambda ws=ws: torch.cat(ws)
                sources[f"{i}.gate_up"] = lambda gu=gate_up: torch.cat(gu)
            sources[f"{i}.o"] = lambda w=att.o_proj.weight: w
            sources[f"{i}.down"] = lambda w=mlp.down_proj.weight: w
            fp32_views.append((block, ws, gate_up))
        head = model.lm_head.weight
        self.head_fp32 = head
        # The tied embedding is not on a 4-bit grid: the head is int8 whenever the layers are quantized.
        head_precision = {"fp32": None, "bf16": "bf16"}.get(precision, "int8")
        if head_precision:
            sources["head"] = lambda: head
        linears = _load_or_quantize(sources, precision, head_precision, store, on_progress)
        self._head = linears.get("head")
        self.layers: list[_Layer] = []
        for i, (block, ws, gate_up) in enumerate(fp32_views):
            self.layers.append(_Layer(
                in_norm=block.input_layernorm.weight.float(), post_norm=block.post_attention_layernorm.weight.float(),
                q_w=ws[0], k_w=ws[1], v_w=ws[2], o_w=block.self_attn.o_proj.weight,
                gate_w=gate_up[0], up_w=gate_up[1], down_w=block.mlp.down_proj.weight,
                qkv=linears[f"{i}.qkv"], o=linears[f"{i}.o"], gate_up=linears[f"{i}.gate_up"],
                down=linears[f"{i}.down"]))
        self.intermediate = self.layers[0].gate_w.shape[0]
        self._k: torch.Tensor | None = None  # [layers, kv heads, capacity, head dim]
        self._v: torch.Tensor | None = None
        self._cos: torch.Tensor | None = None  # [capacity, head dim]
        self._sin_signed: torch.Tensor | None = None  # sin with its first half negated (see _forward)
        self.length = 0
        self._tokens: list[int] = []  # the token at each cached position
        self._prefilled = 0  # positions [0, _prefilled) came from prefill (full precision): reusable
        self.reused = 0  # prompt tokens the last prefill found already cached
        self._native: tuple | None = None  # cached arguments of the C++ decode step (() when not applicable)

    # -- cache -----------------------------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return 0 if self._k is None else int(self._k.shape[2])

    def reserve(self, tokens: int) -> None:
        """Make room for ``tokens`` positions (a power of two, so a session settles on one size)."""
        import torch

        if tokens <= self.capacity:
            return
        size = min(max(MIN_CACHE, 1 << (tokens - 1).bit_length()), max(self.max_positions, tokens))
        shape = (len(self.layers), self.n_kv, size, self.head_dim)
        k = torch.zeros(shape, device=self.device)
        v = torch.zeros(shape, device=self.device)
        if self._k is not None and self.length:
            k[:, :, : self.length] = self._k[:, :, : self.length]
            v[:, :, : self.length] = self._v[:, :, : self.length]
        self._k, self._v = k, v
        positions = torch.arange(size, device=self.device)[None]
        cos, sin = self._rotary(self.embed[:1], positions)
        self._cos, sin = cos[0].float(), sin[0].float()
        half = self.head_dim // 2
        self._sin_signed = torch.cat([-sin[:, :half], sin[:, half:]], dim=-1)

    def rewind(self, length: int) -> None:
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot rewind to {length}; the cache holds {self.length}")
        self.length = length
        del self._tokens[length:]
        self._prefilled = min(self._prefilled, length)

    # -- forward ---------------------------------------------------------------------------------------------
    def prefill(self, ids: list[int], reuse: bool = True) -> torch.Tensor:
        """Run the prompt (after any prefix already cached); return the last position's logits (fp32 [vocab])."""
        import torch

        common = 0
        if reuse:  # the last prompt token always runs: its logits are the answer
            limit = min(self._prefilled, self.length, len(ids) - 1)
            while common < limit and self._tokens[common] == ids[common]:
                common += 1
        self.rewind(common)
        self.reused = common
        self.reserve(len(ids))
        tokens = torch.tensor(ids[common:], device=self.device)
        last = None
        for start in range(0, len(tokens), PREFILL_CHUNK):
            last = self._forward(tokens[start:start + PREFILL_CHUNK], decode=False)
        self._tokens.extend(ids[common:])
        self._prefilled = len(ids)
        return self._logits(last[-1:], decode=False)[0]

    def step(self, token: int) -> torch.Tensor:
        """Append one token; return the next-token logits (fp32 [vocab])."""
        import torch

        self.reserve(self.length + 1)
        native = self._native_args()
        if native is not None:  # the whole layer stack in one C++ call (int4 kernel precisions)
            pos = self.length
            x = self.embed[token:token + 1].float()
            hidden = torch.ops.playground.llama_decode_layers(
                x, pos, self._cos[pos], self._sin_signed[pos], self._k, self._v,
                *native)
            self.length = pos + 1
        else:
            hidden = self._forward(torch.tensor([token], device=self.device), decode=True)
        self._tokens.append(token)
        return self._logits(hidden, decode=True)[0]

    def _native_args(self) -> tuple | None:
        """Arguments of the C++ decode step after the caches, or None when the layers are not int4-kernel."""
        if self._native is None:
            kinds = {lin.precision for layer in self.layers for lin in (layer.qkv, layer.o, layer.gate_up, layer.down)}
            if len(kinds) != 1 or kinds.pop() not in ("int4-kernel", "int4-a8-kernel") or self.device.type != "cpu":
                self._native = ()
            else:
                norms = [n for layer in self.layers for n in (layer.in_norm, layer.post_norm)]
                weights = [t for layer in self.layers for lin in (layer.qkv, layer.o, layer.gate_up, layer.down)
                           for t in (lin._w.qweight, lin._w.scales, lin._w.offsets)]
                int8_x = self.layers[0].qkv.precision == "int4-a8-kernel"
                self._native = (norms, weights, self.n_heads, self.n_kv, self.eps, int8_x)
        return self._native or None

    def _forward(self, tokens: torch.Tensor, decode: bool) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        # At batch 1 a decode step is ~20 small ops per layer, each costing microseconds of dispatch: the layer
        # is written with as few as possible (one RMSNorm op, RoPE on q and k together, fused SDPA with GQA).
        t = tokens.shape[0]
        start = self.length
        end = start + t
        x = self.embed[tokens].float()  # [T, D]
        cos, sin = self._cos[start:end, None], self._sin_signed[start:end, None]  # [T, 1, hd]
        pos = torch.arange(start, end, device=self.device)
        hd, nh, nkv = self.head_dim, self.n_heads, self.n_kv
        dim = (x.shape[1],)
        mask = None
        if t > 1:  # causal within the chunk; everything before ``start`` is visible
            mask = torch.ones(t, end, dtype=torch.bool, device=self.device).tril(diagonal=start)
        for i, layer in enumerate(self.layers):
            h = F.rms_norm(x, dim, layer.in_norm, self.eps)
            if decode:
                qkv = layer.qkv(h)
            else:
                qkv = torch.cat([F.linear(h, layer.q_w), F.linear(h, layer.k_w), F.linear(h, layer.v_w)], dim=1)
            qk = qkv[:, : (nh + nkv) * hd].view(t, nh + nkv, hd)
            # Rotate-half RoPE as one expression: roll swaps the halves, the signed sine negates the first.
            qk = qk * cos + qk.roll(hd // 2, dims=-1) * sin
            self._k[i].index_copy_(1, pos, qk[:, nh:].transpose(0, 1))
            self._v[i].index_copy_(1, pos, qkv[:, (nh + nkv) * hd:].view(t, nkv, hd).transpose(0, 1))
            attn = F.scaled_dot_product_attention(
                qk[:, :nh].transpose(0, 1)[None], self._k[i, :, :end][None], self._v[i, :, :end][None],
                attn_mask=mask, enable_gqa=True)  # [1, nh, T, hd]
            attn = attn[0].transpose(0, 1).reshape(t, nh * hd)
            x = x + (layer.o(attn) if decode else F.linear(attn, layer.o_w))
            h = F.rms_norm(x, dim, layer.post_norm, self.eps)
            if decode:
                gu = layer.gate_up(h)
                gate, up = gu[:, : self.intermediate], gu[:, self.intermediate:]
            else:
                gate, up = F.linear(h, layer.gate_w), F.linear(h, layer.up_w)
            x = x + (layer.down(F.silu(gate) * up) if decode else F.linear(F.silu(gate) * up, layer.down_w))
        self.length = end
        return x

    def _logits(self, hidden: torch.Tensor, decode: bool) -> torch.Tensor:
        import torch.nn.functional as F

        h = F.rms_norm(hidden, (hidden.shape[1],), self.final_norm, self.eps)
        if not decode or self._head is None:
            return F.linear(h, self.head_fp32).float()
        return self._head(h)

    def quantized_bytes(self) -> int:
        """Bytes of weights a decode step reads (layers + head)."""
        total = sum(lin.nbytes() for layer in self.layers for lin in (layer.qkv, layer.o, layer.gate_up, layer.down))
        return total + (self._head.nbytes() if self._head is not None else int(self.head_fp32.nbytes))


def _load_or_quantize(sources: dict[str, Callable[[], torch.Tensor]], precision: str, head_precision: str | None,
                      store: Path | None, on_progress: Callable[[ProgressEvent], None]) -> dict[str, QLinear]:
    """Quantized layers from ``store`` when it holds this exact set, else quantized now (and saved there)."""
    from playground.engine.fast import store as qstore

    wanted = {name: head_precision if name == "head" else precision for name in sources}
    if store is not None and precision != "fp32":
        loaded = qstore.load(store, wanted)
        if loaded is not None:
            return loaded
    linears = {}
    for done, (name, make) in enumerate(sources.items()):
        if precision != "fp32" and done % 8 == 0:
            on_progress(ProgressEvent(f"Quantizing to {precision} (first load at this precision only)",
                                      done / len(sources)))
        linears[name] = QLinear(make(), wanted[name])
    if store is not None and precision != "fp32":
        qstore.save(store, linears)
    return linears


def _fuse_in_place(linears: list[Any]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Concatenate the linears' weights once and make each weight a view of its slice (no second copy)."""
    import torch

    fused = torch.cat([lin.weight.detach() for lin in linears])
    views, row = [], 0
    for lin in linears:
        rows = lin.weight.shape[0]
        lin.weight.data = fused[row:row + rows]
        views.append(lin.weight)
        row += rows
    return fused, views
