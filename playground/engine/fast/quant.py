"""Weight-only quantized linear layers for the decode step, and the precisions a user can pick.

Decode reads every weight once per token, so on a CPU its speed is set by bytes of weights and by how fast the
matmul kernel turns them into products. Precisions:

- ``fp32``: the model's own weights (no copy).
- ``bf16``: weights in bfloat16 (half the bytes; mainly for GPUs).
- ``int8``: per-row int8 weights (torch's ``_weight_int8pack_mm``).
- ``int4``: per-group (32) asymmetric 4-bit weights; our compiled kernel (``int4_kernel``) when it is available, else
  torch's stock ``_weight_int4pack_mm_for_cpu``. Group 32 keeps quality (perplexity +~1%); group 64 does not.
- ``int4-a8``: the same weights, with activations rounded per group to int8 so the kernel multiplies integers
  (llama.cpp's Q4 x Q8 scheme): faster at batch 1, slightly less exact.

The tied embedding / LM head is never 4-bit (its values are not on a 4-bit grid): int8 for int8 and int4.
Torch's stock quantized kernels are only fast with bf16 inputs, so activations are cast to bf16 at their inputs only;
everything else (norms, attention, residuals) stays fp32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16", "int8", "int4", "int4-a8")
GROUP = 32
STOCK_INT4_INNER_K_TILES = 2


def int4_backend() -> str:
    """'kernel' when our compiled int4 kernel is loaded, else 'stock'."""
    try:
        from playground.engine.fast import int4_kernel
    except ImportError:
        return "stock"
    return "kernel" if int4_kernel.available() else "stock"


def resolved_precision(precision: str, device_type: str = "cpu") -> str:
    """What ``QLinear`` stores for ``precision`` here: "int4" becomes "int4-kernel" or "int4-stock"."""
    if not precision.startswith("int4"):
        return precision
    if device_type == "cpu" and int4_backend() == "kernel":
        return f"{precision}-kernel"
    return "int4-stock"


class QLinear:
    """``y = x @ W.T`` for x fp32 [T, K] → fp32 [T, N], with W stored at one precision."""

    def __init__(self, weight: torch.Tensor, precision: str) -> None:
        import torch

        self.precision = precision
        self.n, self.k = weight.shape
        self._w: Any = None
        self._scales: Any = None
        if precision == "fp32":
            self._w = weight.float()
        elif precision == "bf16":
            self._w = weight.to(torch.bfloat16)
        elif precision == "int8":
            self._w, self._scales = quantize_int8(weight)
        elif precision in ("int4", "int4-a8"):
            self.precision = resolved_precision(precision, weight.device.type)
            if self.precision.endswith("-kernel"):
                from playground.engine.fast import int4_kernel

                self._w = int4_kernel.quantize(weight.float())
            else:
                self._w, self._scales = quantize_int4_stock(weight.float())
        else:
            raise ValueError(f"unknown precision {precision!r}")

    def state(self) -> dict[str, torch.Tensor]:
        """The stored tensors by name (saved by ``store.py`` so the next load skips quantizing)."""
        if self.precision.endswith("-kernel"):
            return dict(self._w.tensors())
        state = {"w": self._w}
        if self._scales is not None:
            state["scales"] = self._scales
        return state

    @classmethod
    def restore(cls, precision: str, n: int, k: int, state: dict[str, torch.Tensor]) -> QLinear:
        """A layer from ``state()`` saved at the resolved ``precision`` (e.g. "int4-kernel")."""
        lin = cls.__new__(cls)
        lin.precision, lin.n, lin.k = precision, n, k
        if precision.endswith("-kernel"):
            from playground.engine.fast import int4_kernel

            lin._w, lin._scales = int4_kernel.Int4Weight.from_tensors(state), None
        else:
            lin._w, lin._scales = state["w"], state.get("scales")
        return lin

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        p = self.precision
        if p == "fp32":
            return torch.mm(x, self._w.t())
        if p == "bf16":
            return torch.mm(x.to(torch.bfloat16), self._w.t()).float()
        if p == "int8":
            return torch.ops.aten._weight_int8pack_mm(x.to(torch.bfloat16), self._w, self._scales).float()
        if p in ("int4-kernel", "int4-a8-kernel"):
            from playground.engine.fast import int4_kernel

            return int4_kernel.matmul(x, self._w, int8_activations=p == "int4-a8-kernel")
        return torch.ops.aten._weight_int4pack_mm_for_cpu(x.to(torch.bfloat16), self._w, GROUP, self._scales).float()

    def dequantized(self) -> torch.Tensor:
        """The fp32 [N, K] weights this layer effectively multiplies by (x = identity reads them out)."""
        import torch

        return self(torch.eye(self.k, device=self._device())).t().contiguous()

    def _device(self) -> torch.device:
        w = self._w
        return w.device if hasattr(w, "device") else next(v for v in vars(w).values() if hasattr(v, "device")).device

    def nbytes(self) -> int:
        return sum(int(t.nbytes) for t in self.state().values())


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: w ≈ q * scale; returns (q int8 [N, K], scale bf16 [N])."""
    import torch

    w = weight.float()
    scale = (w.abs().amax(dim=1) / 127).clamp(min=1e-12)
    q = torch.clamp(torch.round(w / scale[:, None]), -127, 127).to(torch.int8)
    return q.contiguous(), scale.to(torch.bfloat16)


def quantize_int4_stock(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Asymmetric group-32 4-bit in torch's CPU int4pack layout: w ≈ (q - 8) * scale + zero."""
    import torch

    n, k = weight.shape
    groups = weight.view(n, k // GROUP, GROUP)
    low, high = groups.amin(dim=-1), groups.amax(dim=-1)
    scale = ((high - low) / 15).clamp(min=1e-8)
    q = torch.clamp(torch.round((groups - low[..., None]) / scale[..., None]), 0, 15).to(torch.int32).view(n, k)
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.contiguous(), STOCK_INT4_INNER_K_TILES)
    zero = low + 8 * scale  # the kernel computes (q - 8) * scale + zero
    scales_and_zeros = torch.stack([scale, zero], dim=-1).transpose(0, 1).contiguous().to(torch.bfloat16)
    return packed, scales_and_zeros
