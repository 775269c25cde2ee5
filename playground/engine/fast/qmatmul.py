"""What every quantized weight format's matmul shares: one weight through the library's ``qlinear`` op, the
stock-torch fallback (rows dequantized a chunk at a time) where the library is not in use, and the rounding of x
the kernels apply (``quantize_activations``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from playground.engine.fast import kernels

if TYPE_CHECKING:
    import torch

FALLBACK_CHUNK = 1 << 18  # weights dequantized at a time by the fallback (~1 MiB of fp32)
GEMM_MIN_T = 16  # rows of x from which the kernel runs a tiled GEMM (csrc/ops.h kGemmMinT)
GROUP = 32


def quantize_activations(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """What the int8 mode multiplies by: x [T, K] fp32 rounded per group of 32 to int8 * (max|x| / 127); with
    ``bits=16`` what the fp32 mode's decode multiplies by where ``fp32_x_bits()`` is 16 (int16, max|x| / 32639:
    127 * 256 + 127, so the kernel can split each value into two signed bytes).

    Bit for bit the kernel's rounding: inv = levels / max|x| in fp32, round(x * inv) half to even.
    """
    import torch

    levels = {8: 127.0, 16: 32639.0}[bits]
    g = x.reshape(x.shape[0], -1, GROUP)
    amax = g.abs().amax(dim=-1, keepdim=True)
    # levels / amax as a correctly rounded fp32 division (a Python float over a tensor goes through a reciprocal)
    inv = torch.where(amax > 0, torch.full_like(amax, levels) / amax, torch.zeros_like(amax))
    return (torch.round(g * inv) * (amax / levels)).reshape(x.shape)


def op_ready(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the library's op takes this call: loaded, fp32 x, both on the CPU."""
    import torch

    return kernels.available() and x.dtype == torch.float32 and x.is_cpu and weight.is_cpu


def qlinear(x: torch.Tensor, segment: list[torch.Tensor], kind: int, n: int, int8_x: bool,
            prefill: bool) -> torch.Tensor:
    """``x [..., K] @ W.T`` for one weight (its ``segment`` of tensors, its ``kind``, ``n`` rows) through the op."""
    x2 = x if x.dim() == 2 else x.reshape(-1, x.shape[-1])
    out = kernels.op("qlinear")(x2, segment, [kind], int8_x, True, prefill)
    return out if x.dim() == 2 else out.reshape(*x.shape[:-1], n)


def chunked_linear(x: torch.Tensor, n: int, k: int, rows: Callable[[int, int], torch.Tensor],
                   int8_x: bool, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``x [..., K] @ W.T`` in stock torch, ``rows(i, j)`` giving W's rows [i, j) in ``dtype`` (fp32 unless given),
    a chunk at a time; ``int8_x``: x rounded as decode's int8 mode rounds it (few rows, in fp32; prefill takes x as
    is)."""
    import torch
    import torch.nn.functional as F

    x2 = x.reshape(-1, k).to(dtype or torch.float32)
    if int8_x and x2.shape[0] < GEMM_MIN_T:
        x2 = quantize_activations(x2)
    step = max(1, FALLBACK_CHUNK // k)
    parts = [F.linear(x2, rows(i, min(n, i + step))) for i in range(0, n, step)]
    out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
    return out.reshape(*x.shape[:-1], n).to(x.dtype)
