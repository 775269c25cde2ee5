"""Int5 weights: GGUF's Q5_0, Q5_1 and Q5_K kept at five bits (``csrc/int5_rows.cpp``), on the AVX2 and
AVX512-VNNI paths.

Re-quantized to int8 (what these types were before) a Q5 weight cost 1.0625 bytes where the file holds 0.6875 (Q5_0
and Q5_1: 0.6875 and 0.75): a Q5_K_M file's memory grew by half and decode read half again what llama.cpp reads, and
the Q4_K_M files of models whose widths are not multiples of 256 (Qwen2.5-0.5B, Gemma-3-270M, SmolLM2) keep most of
their layers as Q5_0. This format keeps the file's values: ``qweight`` uint8 [n, ``row_bytes(k)``], per quad of 8
groups of 32 (a last one shorter) 32 bytes of the values' fifth bits, then the groups' nibble bytes as
``int4_kernel``'s (byte j: q[j] low, q[16 + j] high); ``scales`` and ``offsets`` fp16 [n, k/32] as int4's:
``w = q * scale + offset`` with q in 0..31, no offsets (Q5_0): ``offset = -16 * scale``. ``csrc/kernels.h`` gives
the fifth bits' positions.

The loader makes it where the AVX2 or AVX512-VNNI kernels read it (``runs_here``); elsewhere the Q5 types become int8
as before. With ``PLAYGROUND_Q5K_IN_PLACE=1``, where the AVX512-VNNI kernels run, a GGUF's Q5_K tensors are not
repacked at all (``reads_q5k_blocks``): ``qweight`` is then the file's own blocks, uint8 [n, k/256 * 176] on its
memory map (each block: 16 bytes of parameters, which the kernels skip, ``scales`` holding them as kquant.py's; 32
bytes of fifth bits, qh[l]'s bit j for group j's value l; 128 bytes of nibbles, byte l of pair c: group 2c's value l
low, 2c + 1's high), and ``csrc/kernels.h`` (QSeg::k5) reads it there: a first load writes no copy of the model's
largest tensors (as llama.cpp maps them), and the file's page cache is the weights' only copy. Not the default:
decode then reads each block's 16 bytes of parameters beside their copy (a Q5_K weight's bytes +9%; Llama-3.2-1B
Q5_K_M decode 33.3 -> 28.1 tok/s against llama.cpp's 29.4, first load 0.53 -> 0.35 s: README).
``pack`` / ``unpack`` / ``dequantize`` here are numpy and torch: the tests' reference and the fallback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from playground.engine.fast import kernels, kquant, qmatmul

if TYPE_CHECKING:
    import torch

ENV_ENABLE = "PLAYGROUND_INT5"
KIND = 4  # the int5 weight kind in the ops' segment lists
GROUP = 32
QUAD_BYTES = 160  # 32 bytes of fifth bits + 8 groups' 16 nibble bytes
Q5K_BLOCK_BYTES = 176  # a GGUF Q5_K block: fp16 d and dmin, 12 bytes of scale codes, qh, qs
ENV_IN_PLACE = "PLAYGROUND_Q5K_IN_PLACE"  # "1": read Q5_K blocks where they lie (``reads_q5k_blocks``)


def row_bytes(k: int) -> int:
    groups = k // GROUP
    return groups // 8 * QUAD_BYTES + (32 + 16 * (groups % 8) if groups % 8 else 0)


def in_q5k_blocks(qweight_cols: int, k: int) -> bool:
    """Whether a qweight this wide holds GGUF Q5_K blocks as they are (``reads_q5k_blocks``), not int5's quads."""
    return k % 256 == 0 and qweight_cols == k // 256 * Q5K_BLOCK_BYTES


def reads_q5k_blocks() -> bool:
    """Whether a GGUF's Q5_K tensors are read where they lie: asked for (``PLAYGROUND_Q5K_IN_PLACE=1``) and the
    AVX512-VNNI int5 kernels run now (the AVX2 ones take int5's own layout)."""
    on = os.environ.get(ENV_IN_PLACE, "").strip().lower() in ("1", "true", "yes", "on")
    return on and runs_here() and kernels.vnni512()


@dataclass
class Int5Weight(kquant.NibbleParams):
    """qweight uint8 [n, row_bytes(k)] (or a file's Q5_K blocks, [n, k/256 * 176]: ``in_blocks``), scales float16
    [n, k/32] (or Q5_K's own parameters, uint8: kquant.py), offsets float16 [n, k/32] or empty (symmetric, or
    K-quant)."""

    n: int
    k: int
    qweight: torch.Tensor
    scales: torch.Tensor
    offsets: torch.Tensor

    format = "int5"
    implied = -16.0  # Q5_0's offset per unit of scale (kquant.NibbleParams: symmetric, scale_values, offset_values)

    def take(self, rows: torch.Tensor | slice) -> Int5Weight:
        """The weight of rows ``rows`` (an index tensor or a slice)."""
        q = self.qweight[rows]
        return Int5Weight(int(q.shape[0]), self.k, q, self.scales[rows],
                          self.offsets if self.offsets.numel() == 0 else self.offsets[rows])

    @property
    def in_blocks(self) -> bool:
        """Whether qweight is the file's Q5_K blocks as they lie (``reads_q5k_blocks``), not int5's quads."""
        return in_q5k_blocks(int(self.qweight.shape[1]), self.k)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"qweight": self.qweight, "scales": self.scales, "offsets": self.offsets}

    def segment(self) -> list[torch.Tensor]:
        return [self.qweight, self.scales, self.offsets]

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> Int5Weight:
        scales = tensors["scales"]
        k = (int(scales.shape[1]) // kquant.SUPER_BYTES * kquant.SUPER if kquant.is_kparams(scales)
             else int(scales.shape[1]) * GROUP)
        return cls(int(scales.shape[0]), k, tensors["qweight"], scales, tensors["offsets"])

    @property
    def nbytes(self) -> int:
        """Bytes a matmul reads from the weight."""
        return sum(t.numel() * t.element_size() for t in self.tensors().values())


def runs_here() -> bool:
    """Whether a Q5 tensor loads as int5 now: the library loaded on the AVX2 or AVX512-VNNI path (not AVX-512
    without VNNI, nor capped below AVX2), and ``PLAYGROUND_INT5=0`` not set (int8 as before: on two cores, where
    decode runs out of arithmetic before memory, fp32 x can meet int8 weights faster; see the README)."""
    on = os.environ.get(ENV_ENABLE, "").strip().lower() not in ("0", "false", "no", "off")
    return on and (kernels.int16_avx2() or kernels.vnni512())


def pack(values: np.ndarray) -> np.ndarray:
    """uint8 values [n, k] in 0..31 (k a multiple of 32) -> qweight uint8 [n, row_bytes(k)]."""
    n, k = values.shape
    groups, quads = k // GROUP, -(-k // (8 * GROUP))
    q = np.zeros((n, quads * 8, GROUP), np.uint8)
    q[:, :groups] = values.reshape(n, groups, GROUP)
    nib = ((q[..., :16] & 15) | ((q[..., 16:] & 15) << 4)).reshape(n, quads, 128)
    fifth = ((q >> 4) & 1).reshape(n, quads, 4, 2, 2, 16)  # [quad, pair r, group of the pair, low/high v, byte j]
    weights = (1 << (2 * np.arange(4)[:, None] + np.arange(2)[None, :])).astype(np.uint8)  # bit 2r + v
    bits = (fifth * weights[None, None, :, None, :, None]).sum(axis=(2, 4), dtype=np.uint8).reshape(n, quads, 32)
    return np.ascontiguousarray(np.concatenate([bits, nib], axis=-1).reshape(n, -1)[:, :row_bytes(k)])


def unpack(qweight: np.ndarray, k: int) -> np.ndarray:
    """``pack``'s inverse: uint8 values [n, k] in 0..31 (of Q5_K blocks too: ``in_q5k_blocks``)."""
    n = qweight.shape[0]
    if in_q5k_blocks(qweight.shape[1], k):
        blocks = qweight.reshape(n, k // 256, Q5K_BLOCK_BYTES)
        qh = blocks[..., None, 16:48]  # [n, block, 1, l]
        qs = blocks[..., 48:].reshape(n, k // 256, 4, 1, 32)  # [n, block, pair c, 1, l]
        low = np.concatenate([qs & 15, qs >> 4], axis=3).reshape(n, k // 256, 8, 32)  # group 2c + v
        fifth = (qh >> np.arange(8, dtype=np.uint8)[None, None, :, None]) & 1  # group j: qh's bit j
        return np.ascontiguousarray((low | fifth << 4).reshape(n, k))
    groups, quads = k // GROUP, -(-k // (8 * GROUP))
    full = np.zeros((n, quads * QUAD_BYTES), np.uint8)
    full[:, :qweight.shape[1]] = qweight
    full = full.reshape(n, quads, QUAD_BYTES)
    nib = full[..., 32:].reshape(n, quads, 4, 2, 16)  # [quad, pair r, group of the pair, byte j]
    fifth = full[..., :32].reshape(n, quads, 1, 2, 16)
    shift = (2 * np.arange(4)).astype(np.uint8)[None, None, :, None, None]
    low = (nib & 15) | (((fifth >> shift) & 1) << 4)
    high = (nib >> 4) | (((fifth >> (shift + 1)) & 1) << 4)
    values = np.concatenate([low, high], axis=-1).reshape(n, quads * 8, GROUP)
    return np.ascontiguousarray(values[:, :groups].reshape(n, k))


def dequantize(w: Int5Weight) -> torch.Tensor:
    """The fp32 [n, k] weight (numpy and torch: independent of the kernels)."""
    import torch

    q = torch.from_numpy(unpack(w.qweight.numpy(), w.k).astype(np.float32)).reshape(w.n, w.k // GROUP, GROUP)
    out = torch.addcmul(w.offset_values().float().unsqueeze(-1), q, w.scale_values().float().unsqueeze(-1))
    return out.reshape(w.n, w.k)


def dequantize_rows(w: Int5Weight, ids: torch.Tensor) -> torch.Tensor:
    """fp32 rows ``ids`` (an embedding lookup from a tied head)."""
    sub = w.take(ids)
    if kernels.available() and sub.qweight.is_cpu:
        return kernels.op("qdequantize")(sub.segment(), [KIND], w.k)
    return dequantize(sub)


def matmul(x: torch.Tensor, w: Int5Weight, *, int8_activations: bool = False, prefill: bool = False) -> torch.Tensor:
    """``x @ dequantize(w).T`` for x [T, K] fp32 (the modes as ``int4_kernel.matmul``'s)."""
    if qmatmul.op_ready(x, w.qweight):
        return qmatmul.qlinear(x, w.segment(), KIND, w.n, int8_activations, prefill)
    return _fallback(x, w, int8_activations and not prefill)


def _fallback(x: torch.Tensor, w: Int5Weight, int8_activations: bool) -> torch.Tensor:
    """Stock torch, a chunk of rows dequantized at a time (int8 x: decode's rounding, for few rows)."""
    return qmatmul.chunked_linear(x, w.n, w.k, lambda i, j: dequantize(w.take(slice(i, j))), int8_activations)
