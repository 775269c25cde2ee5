"""Prefill's one-pass ops of the compiled library (``csrc/common.cpp``, ``csrc/ops.cpp``) against torch's: the
gated MLP activation, the RMS norms (plain, strided q / k heads, with the residual add) and rope, each in place.
"""

from __future__ import annotations

import pytest
import torch


def _x(t: int, k_: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(t, k_, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("act", ["silu", "gelu"])
def test_gated_activation_in_place_matches_torch(kernel, act: str):
    """Prefill's gated MLP in one pass (the fused decode step's arithmetic): act(gate) * up over the gate half,
    the up half untouched; an odd width takes the scalar tail too."""
    import torch.nn.functional as F

    from playground.engine.fast.forward import _gated

    gu = _x(20, 2 * 37) * 3
    before = gu.clone()
    gate, up = before[:, :37], before[:, 37:]
    want = (F.silu(gate) if act == "silu" else F.gelu(gate, approximate="tanh")) * up
    got = _gated(gu, act)
    assert got.data_ptr() == gu.data_ptr() and torch.equal(gu[:, 37:], up)
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)


def test_prefill_rms_norm_matches_torch(kernel):
    """Prefill's one-pass RMS norms: a plain [T, D] (odd width: the scalar tail too), q and k heads read straight
    out of the qkv product (a strided view), and the residual add done in place in the same pass."""
    import torch.nn.functional as F

    from playground.engine.fast.forward import _add_norm, _norm

    eps = 1e-6
    x, w = _x(9, 77) * 4, _x(1, 77, seed=5)[0]
    assert torch.allclose(_norm(x, w, eps), F.rms_norm(x, (77,), w, eps), rtol=1e-5, atol=1e-6)
    qkv, wq = _x(7, 6 * 32), _x(1, 32, seed=6)[0]
    q = qkv[:, : 4 * 32].view(7, 4, 32)  # rows 192 floats apart, heads 32 apart
    got = _norm(q, wq, eps)
    assert got.is_contiguous() and torch.allclose(got, F.rms_norm(q, (32,), wq, eps), rtol=1e-5, atol=1e-6)
    o = _x(9, 77, seed=7)
    stream = x.clone()
    new, h = _add_norm(stream, o, w, eps)
    assert new.data_ptr() == stream.data_ptr() and torch.allclose(new, x + o, rtol=0, atol=1e-6)
    assert torch.allclose(h, F.rms_norm(x + o, (77,), w, eps), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rot", [32, 16])
def test_prefill_rope_in_place_matches_torch(kernel, rot: int):
    """Prefill's rope in one threaded pass, in place on q / k as views of the qkv product: the same rotation as
    the torch form (x * cos + roll(x) * sin, first half of sin negated) over all of a head's dims or only the first
    ``rot`` (the rest untouched); a position past the tables is refused, not read."""
    from playground.engine.fast.forward import _rope

    cap, t, heads, hd = 40, 9, 3, 32
    angles = torch.arange(cap)[:, None] * torch.linspace(0.1, 1.0, rot // 2)[None]
    cos = torch.cat([angles.cos(), angles.cos()], 1)
    sin = torch.cat([-angles.sin(), angles.sin()], 1)
    positions = torch.arange(30, 30 + t)
    qkv = _x(t, 5 * hd)
    q = qkv[:, : heads * hd].view(t, heads, hd)  # rows 160 floats apart
    want = _rope(q.clone(), cos[positions][:, None], sin[positions][:, None], rot)
    rest = qkv[:, heads * hd:].clone()
    torch.ops.playground.rope_(q, cos, sin, positions)
    assert torch.allclose(q, want, rtol=1e-5, atol=1e-6)
    assert torch.equal(qkv[:, heads * hd:], rest)  # k and v's columns untouched
    with pytest.raises(RuntimeError, match="outside the tables"):
        torch.ops.playground.rope_(q, cos, sin, torch.arange(35, 35 + t))
