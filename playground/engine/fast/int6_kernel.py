"""Int6 weights: GGUF's Q6_K kept at 6 bits (``csrc/int6_rows.cpp``), for CPUs with AVX512-VNNI or AVX2.

A Q6_K tensor (the LM head of most Q4_0 and Q4_K_M files, and Q4_K_M's V / down projections) re-quantized to int8
cost decode 1.0625 bytes a weight against the file's 0.82: Llama-3.2-1B's tied head alone read 279 MB a token where
llama.cpp reads 215. This format keeps the file's values in its 0.82 bytes a weight: ``qweight`` uint8 [N, 3K/4],
per block of 256 weights (two quads of 4 groups of 32) each quad's 64 nibble bytes laid out as ``int4_kernel``'s,
then 64 bytes of the values' top two bits; ``scales`` uint8 [N, K/256 * 18], per block Q6_K's own 16 int8
sub-scales, one per 16 weights, in the order group i of each quad, then the quad, then the half (``4i + 2 quad +
half``), then its fp16 d (``kquant.py``); ``w = (q - 32) * d * sub`` with q in 0..63. ``csrc/kernels.h`` gives the
bit positions.

The loader makes it where a kernel reads it at speed (``runs_here``: AVX512-VNNI, and the AVX2 path with its int16
x); elsewhere Q6_K becomes int8 as before. ``dequantize`` here is plain torch: the tests' reference and the
fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from playground.engine.fast import kernels, kquant, qmatmul
from playground.engine.fast.int8_kernel import ScaledWeight

if TYPE_CHECKING:
    import torch

KIND = 3  # the int6 weight kind in the ops' segment lists
BLOCK = 256  # weights per block: K must be a multiple
BLOCK_BYTES = 192


@dataclass
class Int6Weight(ScaledWeight):
    """qweight uint8 [n, 3k/4], scales: Q6_K's parameters, uint8 [n, k/256 * 18] (the layout above)."""

    format = "int6"

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> Int6Weight:
        q = tensors["qweight"]
        return cls(int(q.shape[0]), int(q.shape[1]) // 3 * 4, q, tensors["scales"])


def runs_here() -> bool:
    """Whether a Q6_K tensor loads as int6 now: the library loaded, AVX512-VNNI or the AVX2 path (not capped below
    them)."""
    return kernels.vnni512() or kernels.int16_avx2()


def dequantize(w: Int6Weight) -> torch.Tensor:
    """The fp32 [n, k] weight, in plain torch (independent of the kernels)."""
    import torch

    n, blocks = w.n, w.k // BLOCK
    q = w.qweight.reshape(n, blocks, BLOCK_BYTES).to(torch.int32)
    nib = q[..., :128].reshape(n, blocks, 2, 64)  # per quad
    top = torch.stack([(q[..., 128:] >> s) & 3 for s in (0, 2, 4, 6)], dim=2).reshape(n, blocks, 2, 2, 64)
    first = (nib & 15) | top[:, :, :, 0] << 4  # each quad's groups' first halves
    second = (nib >> 4) | top[:, :, :, 1] << 4
    values = torch.stack([first.reshape(n, blocks, 2, 4, 16), second.reshape(n, blocks, 2, 4, 16)], dim=4)
    scales = kquant.int6_scales(w.scales).reshape(n, blocks, 4, 2, 2).transpose(2, 3)  # [.., quad, group, half]
    return ((values - 32).float() * scales.unsqueeze(-1)).reshape(n, w.k)


def dequantize_rows(w: Int6Weight, ids: torch.Tensor) -> torch.Tensor:
    """fp32 rows ``ids`` (an embedding lookup from a tied head)."""
    sub = Int6Weight(int(ids.numel()), w.k, w.qweight[ids], w.scales[ids])
    if kernels.available() and sub.qweight.is_cpu:
        return kernels.op("qdequantize")(sub.segment(), [KIND], w.k)
    return dequantize(sub)


def matmul(x: torch.Tensor, w: Int6Weight, *, int8_activations: bool = False, prefill: bool = False) -> torch.Tensor:
    """``x @ dequantize(w).T`` for x [T, K] fp32 (the modes as ``int8_kernel.matmul``'s)."""
    if qmatmul.op_ready(x, w.qweight):
        return qmatmul.qlinear(x, w.segment(), KIND, w.n, int8_activations, prefill)
    return _fallback(x, w, int8_activations and not prefill)


def _fallback(x: torch.Tensor, w: Int6Weight, int8_activations: bool) -> torch.Tensor:
    """Stock torch, a chunk of rows dequantized at a time (int8 x: decode's rounding, for few rows)."""
    return qmatmul.chunked_linear(
        x, w.n, w.k, lambda i, j: dequantize(Int6Weight(j - i, w.k, w.qweight[i:j], w.scales[i:j])), int8_activations)
