"""Symmetric int8 weights, per group of 32 along K, with an fp16 scale: ``w ≈ q * scale``.

What GGUF's 5-, 6- and 8-bit tensors become (``gguf_repack``): Q8_0 and Q5_0 are exactly this format (a Q5_0 block
is ``d * (q - 16)``, q - 16 fits int8); Q5_1, Q5_K and Q6_K are re-quantized from their own values (error measured
in tests/engine/test_gguf_repack.py). Layout (what a kernel reads): ``qweight`` int8 [N, K], ``scales`` fp16
[N, K/32]; scale of group g of row r is ``scales[r, g]``, for ``qweight[r, 32g:32g+32]``.

``matmul`` here is plain torch (a chunk of rows dequantized at a time), the reference a compiled kernel must match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

GROUP = 32
_CHUNK = 1 << 18  # weights dequantized at a time by matmul (1 MiB of fp32)


@dataclass
class Int8Weight:
    """A quantized [n, k] weight; all payload is in torch tensors (see the module docstring for the layout)."""

    n: int
    k: int
    qweight: torch.Tensor  # int8 [n, k]
    scales: torch.Tensor  # float16 [n, k // GROUP]

    def to(self, device: Any) -> Int8Weight:
        return Int8Weight(self.n, self.k, self.qweight.to(device), self.scales.to(device))

    def tensors(self) -> dict[str, torch.Tensor]:
        """The payload by name (state_dict-style)."""
        return {"qweight": self.qweight, "scales": self.scales}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> Int8Weight:
        q = tensors["qweight"]
        return cls(int(q.shape[0]), int(q.shape[1]), q, tensors["scales"])

    @property
    def nbytes(self) -> int:
        """Bytes a matmul reads from the weight."""
        return sum(t.numel() * t.element_size() for t in self.tensors().values())

    def rows(self, start: int, stop: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Rows start..stop dequantized (fp32 unless ``dtype``)."""
        import torch

        q = self.qweight[start:stop].reshape(stop - start, self.k // GROUP, GROUP).to(torch.float32)
        out = (q * self.scales[start:stop].float().unsqueeze(-1)).reshape(stop - start, self.k)
        return out if dtype is None else out.to(dtype)

    def dequantize(self) -> torch.Tensor:
        """The fp32 [N, K] weight this stands for."""
        return self.rows(0, self.n)

    def embedding(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows ``ids`` (any shape) dequantized: [*ids.shape, K] fp32 (an embedding lookup on an int8 table)."""
        flat = ids.reshape(-1)
        q = self.qweight[flat].reshape(-1, self.k // GROUP, GROUP).float()
        out = q * self.scales[flat].float().unsqueeze(-1)
        return out.reshape(*ids.shape, self.k)


def quantize(weight: torch.Tensor) -> Int8Weight:
    """Symmetric per-group int8 of an [N, K] weight (K a multiple of 32): scale = max|w| / 127 per group, stored
    fp16 and rounded up so every q stays within ±127; |w - q * scale| <= scale / 2."""
    import torch

    if weight.dim() != 2 or weight.shape[1] % GROUP:
        raise ValueError(f"quantize wants [N, K] with K a multiple of {GROUP}, got {tuple(weight.shape)}")
    n, k = (int(s) for s in weight.shape)
    g = weight.detach().to(torch.float32).reshape(n, k // GROUP, GROUP)
    amax = g.abs().amax(dim=-1)
    scale = (amax / 127).clamp_min(2.0**-24).to(torch.float16)
    scale = torch.where(scale.float() * 127 < amax, torch.nextafter(scale, torch.full_like(scale, 65504.0)), scale)
    q = torch.round(g / scale.float().unsqueeze(-1)).clamp_(-127, 127).to(torch.int8)
    return Int8Weight(n, k, q.reshape(n, k).contiguous(), scale.contiguous())


def matmul(x: torch.Tensor, w: Int8Weight) -> torch.Tensor:
    """``x @ w.dequantize().T`` for x [..., K] fp32, dequantizing ~1 MiB of rows at a time (never the whole weight)."""
    import torch
    import torch.nn.functional as F

    if x.shape[-1] != w.k:
        raise ValueError(f"matmul: x has K={x.shape[-1]}, the weight {w.k}")
    rows = max(1, _CHUNK // w.k)
    if rows >= w.n:
        return F.linear(x, w.rows(0, w.n, x.dtype))
    return torch.cat([F.linear(x, w.rows(i, min(w.n, i + rows), x.dtype)) for i in range(0, w.n, rows)], dim=-1)
