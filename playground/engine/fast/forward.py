"""The runner's forward pass in torch: the reference the fused C++ step is tested against, the decode path where
the C++ step does not apply (fp32, bf16, no compiler), and prefill (batched matmuls: Python costs nothing there).

Shapes: hidden states are 2-D [T, D]; the cache is [layers, slots, kv heads, capacity, head dim] (fp32, or fp16
for quantized precisions); rope tables are [capacity, rotary dim] with the sine's first half negated, so rope is
one expression (``roll`` swaps the halves, the signed sine negates the first).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from playground.engine.fast.runner import DecoderRunner


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, rot: int) -> torch.Tensor:
    """x [T, heads, hd]; cos/sin [T, 1, rot]: rotate the first ``rot`` dims of each head (all of them usually)."""
    import torch

    if rot == x.shape[-1]:
        return x * cos + x.roll(rot // 2, dims=-1) * sin
    part = x[..., :rot]
    return torch.cat([part * cos + part.roll(rot // 2, dims=-1) * sin, x[..., rot:]], dim=-1)


def _gated(gu: torch.Tensor, kind: str) -> torch.Tensor:
    """act(gate) * up for gu = [gate | up] [T, 2I], in place in gu's first half (a fresh temporary: prefill's are
    tens of MiB, and every new allocation that size costs page faults); returns that half, a strided view."""
    import torch
    import torch.nn.functional as F

    from playground.engine.fast import kernels

    inter = gu.shape[1] // 2
    gate = gu[:, :inter]
    if gu.dtype == torch.float32 and gu.is_cpu and gu.is_contiguous() and kernels.available():
        torch.ops.playground.gated_(gu, 0 if kind == "silu" else 1)  # one pass, the fused step's arithmetic
        return gate
    if kind == "silu":
        F.silu(gate, inplace=True)
    else:
        torch.ops.aten.gelu_(gate, approximate="tanh")
    return gate.mul_(gu[:, inter:])


def _norm(x: torch.Tensor, w: torch.Tensor, eps: float, native: bool = True) -> torch.Tensor:
    """RMS norm over the last dim: the kernels' one-pass op for fp32 on the CPU, else (or ``native`` False: the
    Python decode step, kept torch's own as the fused step's reference) torch's."""
    import torch
    import torch.nn.functional as F

    from playground.engine.fast import kernels

    if native and x.dtype == torch.float32 and x.is_cpu and x.dim() in (2, 3) and x.stride(-1) == 1 \
            and kernels.available():
        return torch.ops.playground.rms_norm(x, w, eps)
    return F.rms_norm(x, (x.shape[-1],), w, eps)


def _add_norm(x: torch.Tensor, o: torch.Tensor, w: torch.Tensor, eps: float,
              native: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(x + o, its RMS norm): prefill's residual stream, added to in place (prefill owns it) in the same pass;
    ``native`` as in ``_norm``."""
    import torch

    from playground.engine.fast import kernels

    if (native and x.dtype == o.dtype == torch.float32 and x.is_cpu and x.is_contiguous() and o.is_contiguous()
            and x.shape == o.shape and kernels.available()):
        return x, torch.ops.playground.add_rms_norm_(x, o, w, eps)
    x = x + o
    return x, _norm(x, w, eps, native)


def _qkv(r: DecoderRunner, i: int, h: torch.Tensor, positions: torch.Tensor, prefill: bool):
    """Queries, keys, values of layer i for hidden states h [T, D] at ``positions``: [T, heads, hd] each."""

    a, layer = r.arch, r.weights.layers[i]
    t, hd, nh, nkv = h.shape[0], a.head_dim, a.n_heads, a.n_kv
    qkv = layer.qkv(h, prefill)
    q = qkv[:, : nh * hd].view(t, nh, hd)
    k = qkv[:, nh * hd: (nh + nkv) * hd].view(t, nkv, hd)
    v = qkv[:, (nh + nkv) * hd:].view(t, nkv, hd)
    if a.qk_norm:
        q, k = _norm(q, layer.q_norm, a.eps, prefill), _norm(k, layer.k_norm, a.eps, prefill)
    cos, sin = r.rope[a.rope_kinds[i]]
    if prefill and _native_rope(q, cos) and _native_rope(k, cos):
        import torch

        torch.ops.playground.rope_(q, cos, sin, positions)  # in place: q and k are views of this layer's qkv
        torch.ops.playground.rope_(k, cos, sin, positions)
        return q, k, v
    cos, sin = cos[positions][:, None], sin[positions][:, None]
    return _rope(q, cos, sin, a.rotary_dim), _rope(k, cos, sin, a.rotary_dim), v


def _native_rope(x: torch.Tensor, table: torch.Tensor) -> bool:
    """Whether the library's in-place rope takes x [T, heads, hd] and this table (fp32 on the CPU, rows contiguous)."""
    import torch

    from playground.engine.fast import kernels

    return (x.dtype == table.dtype == torch.float32 and x.is_cpu and x.stride(-1) == 1 and table.is_contiguous()
            and kernels.available())


def _mlp_and_residuals(r: DecoderRunner, i: int, x: torch.Tensor, attn: torch.Tensor, prefill: bool,
                       gu_buf: torch.Tensor | None = None) -> torch.Tensor:
    """The attention output's projection, the MLP and both residuals (prefill: one pass per norm, the residual
    stream added to in place). ``gu_buf``: prefill's flat buffer for the gate/up product, shared by the chunk's
    layers."""
    a, layer = r.arch, r.weights.layers[i]
    o = layer.o(attn, prefill)
    if a.sandwich:
        o = _norm(o, layer.attn_out, a.eps, prefill)
    x, h = _add_norm(x, o, layer.mlp_in, a.eps, prefill)
    d = layer.down(_gated(layer.gate_up(h, prefill, gu_buf), a.act), prefill)
    if a.sandwich:
        d = _norm(d, layer.mlp_out, a.eps, prefill)
    return x.add_(d)


def _attend(r: DecoderRunner, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
            mask: torch.Tensor | None) -> torch.Tensor:
    """q [T, nh, hd] over keys/values [nkv, S, hd] (mask [T, S] bool, True = visible) -> [T, nh * hd]."""
    import torch
    import torch.nn.functional as F

    a = r.arch
    t = q.shape[0]
    group = a.n_heads // a.n_kv
    if not a.attn_softcap:
        if group > 1 and t > 1:
            # The queries of the heads sharing a kv head as one longer sequence against its keys: one attention
            # per kv head, each key block multiplied by group x more queries at once.
            qh = q.transpose(0, 1).reshape(a.n_kv, group * t, a.head_dim)
            m = None if mask is None else mask.repeat(group, 1)
            out = F.scaled_dot_product_attention(qh[None], keys[None], values[None], attn_mask=m,
                                                 scale=a.attn_scale)[0]
            return out.view(a.n_heads, t, a.head_dim).transpose(0, 1).reshape(t, a.n_heads * a.head_dim)
        out = F.scaled_dot_product_attention(q.transpose(0, 1)[None], keys[None], values[None], attn_mask=mask,
                                             scale=a.attn_scale, enable_gqa=True)[0]
        return out.transpose(0, 1).reshape(t, a.n_heads * a.head_dim)
    qh = q.transpose(0, 1).reshape(a.n_kv, group * t, a.head_dim)
    scores = (qh @ keys.transpose(1, 2) * a.attn_scale).view(a.n_heads, t, -1)  # [nh, T, S]
    scores = torch.tanh(scores / a.attn_softcap) * a.attn_softcap
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1).view(a.n_kv, group * t, -1)
    return (probs @ values).view(a.n_heads, t, a.head_dim).transpose(0, 1).reshape(t, a.n_heads * a.head_dim)


def prefill_chunk(r: DecoderRunner, slot: int, tokens: torch.Tensor, start: int) -> torch.Tensor:
    """Run ``tokens`` [T] at positions start.. of ``slot`` (writing its cache); return hidden states [T, D]."""
    import torch

    a = r.arch
    t = int(tokens.shape[0])
    end = start + t
    positions = torch.arange(start, end)
    x = r.embed(tokens)
    # One gate/up product buffer for all layers: a fresh one per layer (tens of MiB) cost a page fault per 4 KiB.
    gu_buf = torch.empty(t * max(layer.gate_up.n for layer in r.weights.layers))
    masks: dict[int, torch.Tensor] = {}  # per window (0: global), made once for the chunk's layers
    for i, layer in enumerate(r.weights.layers):
        h = _norm(x, layer.attn_in, a.eps)
        q, k, v = _qkv(r, i, h, positions, True)
        r.k[i, slot, :, start:end] = k.transpose(0, 1)
        r.v[i, slot, :, start:end] = v.transpose(0, 1)
        window = a.windows[i]
        lo = max(0, start - window + 1) if window else 0
        keys = r.k[i, slot, :, lo:end].float()
        values = r.v[i, slot, :, lo:end].float()
        mask = masks.get(window)
        if mask is None:
            key_pos = torch.arange(lo, end)
            mask = key_pos[None] <= positions[:, None]  # causal; everything before ``start`` is visible
            if window:
                mask &= positions[:, None] - key_pos[None] < window
            masks[window] = mask
        x = _mlp_and_residuals(r, i, x, _attend_causal(r, q, keys, values, mask, start - lo, t == 1 and not window),
                               True, gu_buf)
    return x


QUERY_BLOCK = 128  # prefill's queries per attention call: each block reads only the keys it can see


def _attend_causal(r: DecoderRunner, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                   first: int, unmasked: bool) -> torch.Tensor:
    """``_attend`` for a causal chunk whose first query sits at key index ``first``: blocks of queries, each over the
    keys up to its last one (torch's CPU flash attention walks every key of a 512-key chunk, masked or not: a
    512-token prompt spent ~40% of its attention on keys its queries cannot see)."""
    import torch

    t = q.shape[0]
    if unmasked or t <= QUERY_BLOCK:
        return _attend(r, q, keys, values, None if unmasked else mask)
    parts = []
    for b0 in range(0, t, QUERY_BLOCK):
        b1 = min(t, b0 + QUERY_BLOCK)
        seen = first + b1  # keys [0, seen) hold every key these queries can see
        parts.append(_attend(r, q[b0:b1], keys[:, :seen], values[:, :seen], mask[b0:b1, :seen]))
    return torch.cat(parts)


def decode_step(r: DecoderRunner, tokens: torch.Tensor, slots: list[int], positions: list[int]) -> torch.Tensor:
    """One token per row, row b in ``slots[b]`` at ``positions[b]``; return hidden states [B, D]."""
    import torch

    a = r.arch
    b = int(tokens.shape[0])
    pos = torch.tensor(positions)
    x = r.embed(tokens)
    for i, layer in enumerate(r.weights.layers):
        h = _norm(x, layer.attn_in, a.eps, False)
        q, k, v = _qkv(r, i, h, pos, False)
        rows = []
        for j in range(b):
            s, p = slots[j], positions[j]
            r.k[i, s, :, p] = k[j]
            r.v[i, s, :, p] = v[j]
            lo = max(0, p - a.windows[i] + 1) if a.windows[i] else 0
            rows.append(_attend(r, q[j:j + 1], r.k[i, s, :, lo:p + 1].float(), r.v[i, s, :, lo:p + 1].float(), None))
        x = _mlp_and_residuals(r, i, x, torch.cat(rows), False)
    return x
