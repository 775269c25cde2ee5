"""Int8 weights (symmetric, per group of 32 with an fp16 scale: ``w = q * scale``) and their matmul.

The layout GGUF's Q8_0 (and Q6_K, re-quantized) load into and the ``int8`` precision quantizes to: ``qweight``
int8 [N, K], ``scales`` fp16 [N, K/32]. The functions take the tensors themselves, so any holder of that layout
(the GGUF loader's weight class, ``quant.Int8Group``) goes through the same kernels (``csrc/int8_rows.cpp``):
fp32 activations (exact up to rounding) or int8 ones (llama.cpp's Q8_0 x Q8_0 scheme), a tiled GEMM for prefill.
Fallback without the library: stock torch, a chunk of rows dequantized at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from playground.engine.fast import qmatmul

if TYPE_CHECKING:
    import torch

GROUP = 32
KIND = 2  # the int8 weight kind in the ops' segment lists
MAX_ABS = 65000.0 * 127


@dataclass
class ScaledWeight:
    """A quantized [n, k] weight held as ``qweight`` and fp16 ``scales`` (``quant.Int8Group``,
    ``int6_kernel.Int6Weight``): the tensors it stores and the segment the kernels take."""

    n: int
    k: int
    qweight: torch.Tensor
    scales: torch.Tensor

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"qweight": self.qweight, "scales": self.scales}

    def segment(self) -> list[torch.Tensor]:
        return [self.qweight, self.scales]

    @property
    def nbytes(self) -> int:
        """Bytes a matmul reads from the weight."""
        return sum(t.numel() * t.element_size() for t in self.tensors().values())


def quantize(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[N, K] (K a multiple of 32) -> (qweight int8 [N, K] in -127..127, scales fp16 [N, K/32]).

    The scale is max|w| / 127 of the group, rounded up to fp16 (so no q leaves -127..127); q is chosen against
    the stored scale: |w - q * scale| <= scale / 2."""
    import torch

    if weight.dim() != 2 or weight.shape[1] % GROUP:
        raise ValueError(f"quantize wants [N, K] with K a multiple of {GROUP}, got {tuple(weight.shape)}")
    n, k = (int(s) for s in weight.shape)
    g = weight.detach().float().reshape(n, k // GROUP, GROUP)
    amax = g.abs().amax(dim=-1)
    if n * k and not (bool(torch.isfinite(amax).all()) and float(amax.max()) <= MAX_ABS):
        raise ValueError("quantize: weights must be finite and fit fp16 scales")
    scale = (amax / 127).clamp_min(2.0**-24)
    half = scale.to(torch.float16)
    half = torch.where(half.float() < scale, torch.nextafter(half, torch.full_like(half, float("inf"))), half)
    q = torch.round(g / half.float().unsqueeze(-1)).clamp_(-127, 127).to(torch.int8)
    return q.reshape(n, k).contiguous(), half.contiguous()


def dequantize(qweight: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """The fp32 [N, K] weight."""
    n, k = qweight.shape
    return (qweight.float().reshape(n, k // GROUP, GROUP) * scales.float().unsqueeze(-1)).reshape(n, k)


def quantize_activations(x: torch.Tensor) -> torch.Tensor:
    """What the int8-activation mode multiplies by (the kernels' rounding, ``qmatmul.quantize_activations``)."""
    return qmatmul.quantize_activations(x)


def matmul(x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, *,
           int8_activations: bool = False, prefill: bool = False) -> torch.Tensor:
    """``x @ dequantize(qweight, scales).T`` for x [T, K] fp32; ``int8_activations``: the reduced-precision mode
    (int8 x in decode); ``prefill``: the GEMM whatever T is (bf16 where ``int4_kernel.tiles_bf16()``; on the AVX2
    path x rounded to int16 in the fp32 mode, as decode rounds it, and fp32 in the int8 mode)."""
    n, k = qweight.shape
    if qmatmul.op_ready(x, qweight):
        return qmatmul.qlinear(x, [qweight, scales], KIND, n, int8_activations, prefill)
    return qmatmul.chunked_linear(x, n, k, lambda i, j: dequantize(qweight[i:j], scales[i:j]),
                                  int8_activations and not prefill)
