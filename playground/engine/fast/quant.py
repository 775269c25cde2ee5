"""Linear layers at the precision a user picks, and the precisions.

Decode reads every weight once per token, so on a CPU its speed is set by bytes of weights and by how fast the
matmul kernel turns them into products. Precisions:

- ``fp32``: the model's own weights.
- ``bf16``: weights in bfloat16 (half the bytes; mainly for GPUs).
- ``int8``: symmetric int8 per group of 32 with fp16 scales (GGUF's Q8_0 layout, ``int8_kernel``), fp32 x.
- ``int4``: asymmetric group-32 4-bit weights (``int4_kernel``), fp32 activations. Group 32 keeps quality
  (perplexity +~1%); group 64 does not.
- ``int4-a8``: the same weights, with activations rounded per group to int8 in decode so the kernels multiply
  integers (llama.cpp's Q4 x Q8 scheme).
  The MLP's down projection keeps fp32 activations (``layer_precision``): its input, the gated activation, has
  the outliers int8 rounding hurts most (embedded model, perplexity over the varied text: +1.25% with every
  projection at int8 x, +0.89% with the down projection at fp32 x).

Prefill of the quantized precisions runs a GEMM (``int4_kernel.prefill_gemm``): on the AVX2 path the weights are
multiplied in integers by x rounded as decode rounds it (int16; int4 weights in the ``-a8`` layers by int8 x);
elsewhere on tiles of dequantized weights, in bf16 where the CPU has AVX512-BF16, else fp32.

The tied embedding / LM head is never 4-bit (its values are not on a 4-bit grid): int8 for int8 and int4.
A GGUF file's weights keep the format they were stored in (int4, int5, int6 or int8 after repacking); the precision
then picks the activations (``-a8`` or fp32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from playground.engine.fast.int8_kernel import ScaledWeight

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16", "int8", "int4", "int4-a8")
QUANTIZED = ("int4", "int5", "int6", "int8")  # the stored formats the kernels multiply
GROUP = 32


def resolved_precision(precision: str, device_type: str = "cpu") -> str:
    """What ``QLinear`` stores for ``precision`` (the same name: the int4 format no longer depends on the kernel)."""
    return precision


def weight_format(precision: str) -> str:
    """The stored format of a precision: fp32, bf16, int8 or int4 (or int5 / int6: a GGUF's Q5 / Q6_K, never asked
    for)."""
    for fmt in QUANTIZED:
        if precision.startswith(fmt):
            return fmt
    return precision


def reduced_activations(precision: str) -> bool:
    return precision.endswith("-a8")


def layer_precision(precision: str, group: str) -> str:
    """The precision of one of a decoder layer's linear groups (qkv, o, gate_up, down) at ``precision``: the same,
    except that the down projection of a ``-a8`` precision keeps fp32 activations (see the module docstring)."""
    return precision.removesuffix("-a8") if group == "down" else precision


@dataclass
class Int8Group(ScaledWeight):
    """Symmetric int8 per group of 32 (``w = q * scale``): qweight int8 [n, k], scales fp16 [n, k/32]."""

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> Int8Group:
        q = tensors["qweight"]
        return cls(int(q.shape[0]), int(q.shape[1]), q, tensors["scales"])


def stored_format(w: Any) -> str:
    """int4 (``Int4Weight``), int5 / int6 (``Int5Weight`` / ``Int6Weight``: their ``format``), int8 (an int8 holder
    with qweight / scales) or float."""
    if not hasattr(w, "qweight"):
        return "float"
    return getattr(w, "format", None) or ("int4" if hasattr(w, "offsets") else "int8")


class QLinear:
    """``y = x @ W.T`` for x fp32 [T, K] → fp32 [T, N], with W stored at one precision (no bias: the runner adds
    biases itself)."""

    def __init__(self, weight: torch.Tensor, precision: str) -> None:
        import torch

        self.precision = precision
        self.n, self.k = (int(s) for s in weight.shape)
        fmt = weight_format(precision)
        if fmt == "fp32":
            self._w: Any = weight.float()
        elif fmt == "bf16":
            self._w = weight.to(torch.bfloat16)
        elif fmt == "int8":
            from playground.engine.fast import int8_kernel

            self._w = Int8Group(self.n, self.k, *int8_kernel.quantize(weight))
        elif fmt == "int4":
            from playground.engine.fast import int4_kernel

            self._w = int4_kernel.quantize(weight.float())
        else:
            raise ValueError(f"unknown precision {precision!r}")

    @classmethod
    def wrap(cls, weight: Any, precision: str) -> QLinear:
        """A layer around an already quantized weight (``Int4Weight``, ``Int5Weight``, ``Int6Weight``, an int8
        holder with qweight/scales) or a float tensor (quantized now to ``precision``'s format)."""
        fmt = stored_format(weight)
        if fmt == "float":
            return cls(weight, precision)
        lin = cls.__new__(cls)
        lin.precision = fmt + ("-a8" if reduced_activations(precision) else "")
        lin.n, lin.k = int(weight.qweight.shape[0]), int(getattr(weight, "k", weight.qweight.shape[-1]))
        lin._w = weight
        return lin

    @property
    def format(self) -> str:
        return weight_format(self.precision)

    @property
    def weight(self) -> Any:
        """What this layer multiplies by: a float tensor, an ``Int4Weight`` or an ``Int8Group``."""
        return self._w

    def state(self) -> dict[str, torch.Tensor]:
        """The stored tensors by name (saved by ``store.py`` so the next load skips quantizing)."""
        if self.format in QUANTIZED:
            return dict(self._w.tensors())
        return {"w": self._w}

    @classmethod
    def restore(cls, precision: str, n: int, k: int, state: dict[str, torch.Tensor]) -> QLinear:
        """A layer from ``state()`` saved at ``precision``."""
        lin = cls.__new__(cls)
        lin.precision, lin.n, lin.k = precision, n, k
        fmt = weight_format(precision)
        if fmt == "int4":
            from playground.engine.fast import int4_kernel

            lin._w = int4_kernel.Int4Weight.from_tensors(state)
        elif fmt == "int5":
            from playground.engine.fast.int5_kernel import Int5Weight

            lin._w = Int5Weight.from_tensors(state)
        elif fmt == "int6":
            from playground.engine.fast.int6_kernel import Int6Weight

            lin._w = Int6Weight.from_tensors(state)
        elif fmt == "int8":
            lin._w = Int8Group.from_tensors(state)
        else:
            lin._w = state["w"]
        return lin

    def __call__(self, x: torch.Tensor, prefill: bool = False) -> torch.Tensor:
        """``prefill``: the kernels' GEMM for any number of rows (see int4_kernel.matmul)."""
        import torch

        fmt, a8 = self.format, reduced_activations(self.precision)
        if fmt == "fp32":
            return torch.mm(x, self._w.t())
        if fmt == "bf16":
            return torch.mm(x.to(torch.bfloat16), self._w.t()).float()
        if fmt == "int8":
            from playground.engine.fast import int8_kernel

            return int8_kernel.matmul(x, self._w.qweight, self._w.scales, int8_activations=a8, prefill=prefill)
        if fmt == "int6":
            from playground.engine.fast import int6_kernel

            return int6_kernel.matmul(x, self._w, int8_activations=a8, prefill=prefill)
        if fmt == "int5":
            from playground.engine.fast import int5_kernel

            return int5_kernel.matmul(x, self._w, int8_activations=a8, prefill=prefill)
        from playground.engine.fast import int4_kernel

        return int4_kernel.matmul(x, self._w, int8_activations=a8, prefill=prefill)

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """fp32 rows ``ids`` of the weight (an embedding lookup from a tied, quantized head)."""
        fmt = self.format
        if fmt == "int4":
            from playground.engine.fast import int4_kernel

            return int4_kernel.dequantize_rows(self._w, ids)
        if fmt == "int8":
            from playground.engine.fast import int8_kernel

            return int8_kernel.dequantize(self._w.qweight[ids], self._w.scales[ids])
        if fmt == "int6":
            from playground.engine.fast import int6_kernel

            return int6_kernel.dequantize_rows(self._w, ids)
        if fmt == "int5":
            from playground.engine.fast import int5_kernel

            return int5_kernel.dequantize_rows(self._w, ids)
        return self._w[ids].float()

    def dequantized(self) -> torch.Tensor:
        """The fp32 [N, K] weights this layer effectively multiplies by."""
        import torch

        return self.rows(torch.arange(self.n))

    def kernel_segment(self) -> tuple[int, list[torch.Tensor]] | None:
        """(kind, tensors) as the C++ ops take them, or None for float weights."""
        if self.format == "int4":
            return 1, self._w.segment()
        if self.format == "int8":
            return 2, [self._w.qweight, self._w.scales]
        if self.format == "int6":
            return 3, self._w.segment()
        if self.format == "int5":
            return 4, self._w.segment()
        return None

    def nbytes(self) -> int:
        return sum(int(t.nbytes) for t in self.state().values())
