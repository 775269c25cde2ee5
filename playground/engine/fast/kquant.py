"""K-quant parameters: int4 / int5 weights held as GGUF's Q4_K / Q5_K scale them (``csrc/kernels.h``'s
``QSeg::kparams``). Per super-block of 256 weights (8 groups of 32), 20 bytes: the groups' 6-bit scale codes, their
6-bit min codes, then fp16 ``d`` and ``dmin`` as the file stores them: ``w = d * sc * q - dmin * m``. Such a weight
keeps these bytes (uint8 [n, k / 256 * 20]) where others keep fp16 scales, and no offsets tensor: decode reads 2.5
bytes of parameters per group, not 4 (Q4_K: 0.578 bytes a weight where fp16 scales and offsets took 0.625), and
the values are the file's own, not rounded to fp16.

Q6_K's (int6 weights, ``int6_kernel``): per 256 weights 18 bytes, its 16 int8 sub-scales (in the kernels' order) then
fp16 ``d``: a 16-weight run's scale is ``d * sub``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

SUPER = 256  # weights per super-block
SUPER_BYTES = 20
INT6_BYTES = 18


class NibbleParams:
    """The per-group parameters of an int4 / int5 weight however it holds them: fp16 ``scales`` and ``offsets``,
    fp16 ``scales`` alone (symmetric: the offset ``implied`` times the scale, GGUF's Q4_0 / Q5_0), or K-quant
    parameters in ``scales`` (uint8) and no ``offsets``. Mixed into ``Int4Weight`` and ``Int5Weight``."""

    scales: torch.Tensor
    offsets: torch.Tensor
    implied: float  # the offset per unit of scale where none is stored: -8 (int4), -16 (int5)

    @property
    def symmetric(self) -> bool:
        return self.offsets.numel() == 0 and not is_kparams(self.scales)

    def scale_values(self) -> torch.Tensor:
        """[n, k/32] per-group scales (float16, or fp32 from K-quant parameters)."""
        return values(self.scales)[0] if is_kparams(self.scales) else self.scales

    def offset_values(self) -> torch.Tensor:
        """[n, k/32] whether stored or implied (the implied ones exact in fp16; fp32 from K-quant parameters)."""
        if is_kparams(self.scales):
            return values(self.scales)[1]
        return self.scales * self.implied if self.symmetric else self.offsets


def row_bytes(k: int) -> int:
    return k // SUPER * SUPER_BYTES


def is_kparams(scales: torch.Tensor) -> bool:
    """Whether a weight's ``scales`` are K-quant parameters (bytes) rather than fp16 scales."""
    return scales.element_size() == 1


def values(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [n, k / 256 * 20] -> (scales, offsets) fp32 [n, k / 32]: ``d * sc`` and ``-dmin * m`` (exact: an fp16
    times a 6-bit integer fits fp32's mantissa)."""
    import torch

    n = params.shape[0]
    p = params.reshape(n, -1, SUPER_BYTES)
    d = p[..., 16:20].contiguous().view(torch.float16).float()  # [n, supers, 2]: d, dmin
    scales = p[..., :8].float() * d[..., :1]
    offsets = p[..., 8:16].float() * -d[..., 1:]
    return scales.reshape(n, -1), offsets.reshape(n, -1)


def int6_scales(params: torch.Tensor) -> torch.Tensor:
    """Q6_K's uint8 [n, k / 256 * 18] -> fp32 [n, k / 16] (each block's 16 in the kernels' order): ``d * sub``."""
    import torch

    p = params.reshape(params.shape[0], -1, INT6_BYTES)
    d = p[..., 16:18].contiguous().view(torch.float16).float()
    return (p[..., :16].view(torch.int8).float() * d).reshape(params.shape[0], -1)


def halves(params: np.ndarray, block: int = SUPER_BYTES) -> np.ndarray:
    """The fp16 values of each super-block's parameters (d and dmin; int6's ``block`` of 18: d) as uint16, a view
    (no copy: copying them out took ~0.02 s of a 1B model's load): what a finiteness check reads."""
    flat = np.ascontiguousarray(params).reshape(-1)  # the repack's own output: contiguous already
    count = flat.size // block
    return np.ndarray((count, (block - 16) // 2), np.uint16, flat, 16, (block, 2))
