"""Int4 weights (group 32, asymmetric) and their matmul: the compiled kernels when loaded, else stock torch.

Quantization: per group of ``GROUP`` (32) weights along K: ``w ≈ q * scale + offset`` with q in 0..15, ``offset``
the group's min and ``scale = (max - min) / 15`` (at least ``MIN_SCALE``), both stored as fp16 (5 bits per weight
in all: decode is bound by weight bytes). Packed layout (what the kernels read, and what GGUF's Q4_0 / Q4_1 / Q4_K
repack into): ``qweight`` uint8 [N, K/2], per row group-major, byte j of group g holds q[32g + j] in its low nibble
and q[32g + 16 + j] in its high one; ``scales`` and ``offsets`` fp16 [N, K/32]. Q4_0 is symmetric: its offsets are
-8 * scale and are not stored (``offsets`` empty; 4.5 bits per weight, what decode reads). Q4_K keeps its own
parameters in ``scales`` (uint8: 6-bit scale and min codes, d and dmin per 256 weights; ``kquant.py``; 4.625 bits per
weight) and no ``offsets``.

``matmul(x, w)`` (op ``playground::qlinear``, see ``csrc/``): up to 15 rows of x read each weight once (decode);
more rows (prefill) run a GEMM (``prefill_gemm()`` says which), never on a full-precision copy of the weights: on
the AVX2 path and AVX512-VNNI CPUs in integers on weights repacked a block of rows at a time (csrc/gemm_avx2.cpp,
csrc/gemm_avx512.cpp; a prompt of fewer than 16 rows on AVX512-VNNI: the same numbers without repacking,
csrc/gemm_small.cpp), elsewhere on tiles of dequantized rows with BLAS. Activations, per call
(``int8_activations=``, default ``$PLAYGROUND_INT4_ACTIVATIONS``, else fp32):
- fp32: results match ``x @ dequantize(w).T`` up to float rounding (~1e-7 relative). Except where decode rounds x
  per group of 32 to int16 (AVX512-VNNI and AVX2; ``fp32_x_bits()`` says 16; error at most 1.6e-5 of the group's
  largest |x|, ~1e-5 of the output, far below what the 4-bit weights cost) and multiplies integers: from DRAM that
  reads weights at the memory's own rate, ~2x dequantizing them to fp32. Prefill's GEMM on AVX2 and AVX512-VNNI
  rounds x to int8 as the int8 mode does (2.0-2.3x MKL's fp32 GEMM on AVX2, ``bench/prefill_gemm.py``; no
  measured perplexity cost, ``bench/prefill_quality.py``); on CPUs with AVX512-BF16 and no VNNI (``gemm_bf16()``)
  it takes x and the weight tiles in bf16 through oneDNN, sums in fp32 and rounds each result once to bf16 (2^-9
  relative): ~2.2x the fp32 GEMM on a 2-core Zen 4;
- int8 (reduced precision): decode rounds x per group of 32 to int8 (like llama.cpp's q8) and multiplies integers
  (VNNI where the CPU has it), ~1.3e-2 relative error on random data (``quantize_activations`` shows what it
  multiplies by; the offsets, stored or Q4_0's implied ones, meet x's group sums as rounded, as in llama.cpp's
  Q4_0 x Q8_0: see ``csrc/kernels.h``); so does prefill's GEMM on the AVX2 path and AVX512-VNNI, elsewhere it
  runs as in the fp32 mode.

Fallback (no library, ``PLAYGROUND_INT4_KERNEL=0``, non-CPU or non-fp32 x): stock torch, dequantizing ~1 MiB of
rows at a time into ``F.linear``, computing the same activation mode (fp32 prefill), so they agree up to rounding.
Under ``torch.compile`` the kernel-or-fallback and activation choices are fixed at trace time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from playground.engine.fast import kernels, kquant, qmatmul
from playground.engine.fast.kernel_build import ENV_CACHE, ENV_VERBOSE, source_digest  # noqa: F401 - re-exported
from playground.engine.fast.kernels import (  # noqa: F401 - the kernel API, re-exported
    ENV_ENABLE,
    available,
    build_info,
    set_isa,
    unavailable_reason,
)
from playground.engine.fast.qmatmul import GEMM_MIN_T, quantize_activations  # noqa: F401 - re-exported

if TYPE_CHECKING:
    import torch

GROUP = 32
MIN_SCALE = 2.0**-24  # a constant group's scale (fp16's smallest), so quantize never divides by zero
MAX_ABS = 65000.0  # fp16 scales and offsets: larger weights are refused
ENV_ACTIVATIONS = "PLAYGROUND_INT4_ACTIVATIONS"
KIND = 1  # the int4 weight kind in the ops' segment lists (int8 is 2)


@dataclass
class Int4Weight(kquant.NibbleParams):
    """A quantized [n, k] weight; all payload is in torch tensors (see the module docstring for the layout)."""

    n: int
    k: int
    qweight: torch.Tensor  # uint8 [n, k // 2]
    scales: torch.Tensor  # float16 [n, k // GROUP], or GGUF Q4_K's own parameters: uint8 (kquant.py)
    offsets: torch.Tensor  # float16 [n, k // GROUP], or empty: symmetric (GGUF's Q4_0), offset = -8 * scale; or
    # K-quant parameters (their mins)

    implied = -8.0  # Q4_0's offset per unit of scale (kquant.NibbleParams: symmetric, scale_values, offset_values)

    def to(self, device: Any) -> Int4Weight:
        """The same weight on another device (the kernel runs on CPU; other devices use the fallback)."""
        return Int4Weight(self.n, self.k, self.qweight.to(device), self.scales.to(device), self.offsets.to(device))

    def tensors(self) -> dict[str, torch.Tensor]:
        """The payload by name (state_dict-style)."""
        return {"qweight": self.qweight, "scales": self.scales, "offsets": self.offsets}

    def segment(self) -> list[torch.Tensor]:
        """The tensors in the order the ops take them."""
        return [self.qweight, self.scales, self.offsets]

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> Int4Weight:
        q = tensors["qweight"]
        return cls(int(q.shape[0]), int(q.shape[1]) * 2, q, tensors["scales"], tensors["offsets"])

    @property
    def nbytes(self) -> int:
        """Bytes a matmul reads from the weight."""
        return sum(t.numel() * t.element_size() for t in self.tensors().values())


# ---------------------------------------------------------------- quantization -------------------------------------


def _round_half(x: torch.Tensor, up: bool) -> torch.Tensor:
    """fp32 -> fp16, rounded up (or down) so the result is >= (or <=) x."""
    import torch

    h = x.to(torch.float16)
    off = h.float() < x if up else h.float() > x
    return torch.where(off, torch.nextafter(h, torch.full_like(h, float("inf") if up else float("-inf"))), h)


def quantize(weight: torch.Tensor) -> Int4Weight:
    """Quantize an [N, K] weight (K a multiple of 32) to asymmetric per-group int4.

    Scale and offset come from the group's min/max and are stored as fp16: the offset rounded down, the scale up
    (so the group's range still fits 0..15), q chosen against the stored values: |w - dequantized| <= scale / 2.
    """
    import torch

    if weight.dim() != 2 or weight.shape[1] % GROUP:
        raise ValueError(f"quantize wants [N, K] with K a multiple of {GROUP}, got {tuple(weight.shape)}")
    n, k = (int(s) for s in weight.shape)
    g = weight.detach().to(torch.float32).reshape(n, k // GROUP, GROUP)
    lo32, hi32 = g.amin(dim=-1), g.amax(dim=-1)
    if n * k and not (bool(torch.isfinite(lo32).all()) and bool(torch.isfinite(hi32).all())
                      and max(-float(lo32.min()), float(hi32.max())) <= MAX_ABS):
        raise ValueError(f"quantize: weights must be finite with |w| <= {MAX_ABS:g} (fp16 scales and offsets)")
    lo = _round_half(lo32, up=False)
    scale = _round_half(((hi32 - lo.float()) / 15).clamp_min(MIN_SCALE), up=True)
    q = torch.round((g - lo.float().unsqueeze(-1)) / scale.float().unsqueeze(-1)).clamp_(0, 15).to(torch.uint8)
    packed = q[..., : GROUP // 2] | (q[..., GROUP // 2 :] << 4)
    return Int4Weight(n, k, packed.reshape(n, k // 2).contiguous(), scale.contiguous(), lo.contiguous())


def _dequantize_rows(w: Int4Weight, start: int, stop: int, dtype: torch.dtype | None = None,
                     offsets: bool = True) -> torch.Tensor:
    """Rows start..stop of the fp32 weight (``offsets=False``: just q * scale)."""
    import torch

    packed = w.qweight[start:stop].reshape(stop - start, w.k // GROUP, GROUP // 2)
    q = torch.cat([packed & 15, packed >> 4], dim=-1).to(torch.float32)
    part = Int4Weight(stop - start, w.k, w.qweight[start:stop], w.scales[start:stop],
                      w.offsets if w.offsets.numel() == 0 else w.offsets[start:stop])
    out = q * part.scale_values().float().unsqueeze(-1)
    if offsets:
        out = out + part.offset_values().float().unsqueeze(-1)
    out = out.reshape(stop - start, w.k)
    return out if dtype is None else out.to(dtype)


def dequantize(w: Int4Weight) -> torch.Tensor:
    """The fp32 [N, K] weight the kernel multiplies by."""
    return _dequantize_rows(w, 0, w.n)


def dequantize_rows(w: Int4Weight, ids: torch.Tensor) -> torch.Tensor:
    """fp32 rows ``ids`` of the weight (an embedding lookup from a quantized table)."""
    offsets = w.offsets if w.offsets.numel() == 0 else w.offsets[ids]
    sub = Int4Weight(int(ids.numel()), w.k, w.qweight[ids], w.scales[ids], offsets)
    return dequantize(sub)


# ---------------------------------------------------------------- matmul ------------------------------------------


def _use_kernel() -> bool:
    """Marked ``assume_constant_result`` (below): evaluated once per torch.compile trace."""
    if os.environ.get(ENV_ENABLE) is not None and kernels.env_disabled():
        return False
    return kernels.loaded()


def _int8_default() -> bool:
    """``$PLAYGROUND_INT4_ACTIVATIONS`` (int8 or fp32); a trace-time constant to torch.compile like ``_use_kernel``."""
    return (os.environ.get(ENV_ACTIVATIONS) or "fp32").strip().lower() == "int8"


# matmul's kernel-or-fallback and activation choices are trace-time constants to torch.compile (no graph break).
# torch.compiler.assume_constant_result(fn) only sets this attribute; setting it here avoids importing torch._dynamo
# (~1.5 s) in processes that never compile. test_matmul_under_torch_compile checks that it still does the job.
_use_kernel._dynamo_marked_constant = True  # type: ignore[attr-defined]
_int8_default._dynamo_marked_constant = True  # type: ignore[attr-defined]


def fp32_x_bits() -> int | None:
    """16 when the loaded kernels' fp32-activation decode rounds x to int16 (on the AVX512-VNNI path, and on the
    AVX2 one; not ``exact_fp32``), else None (x multiplied as is)."""
    import torch

    if not kernels.available() or torch.ops.playground.int4_gemv_exact_fp32(-1):
        return None
    return 16 if kernels.vnni512() or kernels.int16_avx2() else None


def _reduced_paths() -> list[str]:
    """The loaded kernels' code paths (``build_info()["isa"]`` split) where they may reduce x's precision: empty
    without the library or under ``exact_fp32``."""
    import torch

    if not kernels.available() or torch.ops.playground.int4_gemv_exact_fp32(-1):
        return []
    return str(build_info().get("isa", "")).split()


def prefill_gemm() -> str:
    """What prefill's GEMM multiplies int4 weights by in the fp32 mode now: "int8" (the AVX2 path and AVX512-VNNI
    CPUs: x rounded per group to int8, as the int8 mode rounds it; ``csrc/gemm_avx2.cpp``, ``csrc/gemm_avx512.cpp``),
    "bf16" (AVX512-BF16 without VNNI on the avx512 path, torch with oneDNN on: x and the weight tiles in bf16) or
    "fp32" (``exact_fp32``, other paths, no kernels). int5 weights as int4's; int6 weights on AVX512-VNNI too (by
    half groups), int8 ones: see ``tiles_bf16``; on the AVX2 path both multiply x rounded to int16 as decode rounds
    it (fp32 in the int8 mode there)."""
    taken = _reduced_paths()
    if taken[:1] == ["avx2"] or taken[:2] == ["avx512", "avx512-vnni"]:
        return "int8"
    return "bf16" if tiles_bf16() else "fp32"


def gemm_bf16() -> bool:
    """True when prefill's GEMM multiplies int4 weights in bf16 (``prefill_gemm``)."""
    return prefill_gemm() == "bf16"


def tiles_bf16() -> bool:
    """True when prefill multiplies the weights the integer GEMMs leave to tiles of dequantized rows (int8 weights
    off the AVX2 path, and int6 ones on AVX-512 CPUs without VNNI) in bf16 (AVX512-BF16, torch with oneDNN on, exact
    fp32 off)."""
    taken = _reduced_paths()
    return taken[:1] == ["avx512"] and "bf16" in taken


@contextmanager
def exact_fp32(on: bool = True) -> Iterator[None]:
    """Within: the fp32 mode multiplies x as is on every CPU and prefill's GEMM runs in fp32 (checks against fp32
    arithmetic to float rounding; decode ~1.2x slower where int16 applies, prefill ~2.2x where bf16 does);
    ``on=False``: both reduced where the CPU can."""
    import torch

    if not kernels.available():
        yield
        return
    before = torch.ops.playground.int4_gemv_exact_fp32(-1)
    torch.ops.playground.int4_gemv_exact_fp32(int(on))
    try:
        yield
    finally:
        torch.ops.playground.int4_gemv_exact_fp32(int(before))


def _fallback(x: torch.Tensor, w: Int4Weight, int8_x: bool) -> torch.Tensor:
    """Stock torch, a chunk of rows (~1 MiB of fp32) dequantized at a time, in x's own dtype. The int8 mode (few
    rows) as the kernel computes it: the weights, offsets included, in fp32 against x rounded to int8 (as llama.cpp's
    Q4_0 x Q8_0; csrc/kernels.h says why the offsets meet x as rounded)."""
    import torch

    rounded = int8_x and x.numel() // w.k < GEMM_MIN_T
    dtype = torch.float32 if rounded else x.dtype
    return qmatmul.chunked_linear(x, w.n, w.k, lambda i, j: _dequantize_rows(w, i, j, dtype), rounded, dtype)


def matmul(x: torch.Tensor, w: Int4Weight, *, int8_activations: bool | None = None,
           prefill: bool = False) -> torch.Tensor:
    """``x @ dequantize(w).T`` for x [..., K] fp32 (usually [T, K]); the kernel when available, else the fallback.

    ``int8_activations`` (default ``$PLAYGROUND_INT4_ACTIVATIONS == "int8"``, else False): the reduced-precision
    mode (int8 x in decode); see the module docstring. ``prefill``:
    the GEMM whatever the number of rows, so a prompt position computes the same however the prompt is split.
    Works inside ``torch.compile(fullgraph=True)``: the kernel-or-fallback choice is made once at trace time.
    """
    import torch

    int8_x = _int8_default() if int8_activations is None else bool(int8_activations)
    if _use_kernel() and x.dtype == torch.float32 and x.is_cpu and w.qweight.is_cpu:
        return qmatmul.qlinear(x, w.segment(), KIND, w.n, int8_x, prefill)
    if x.shape[-1] != w.k:
        raise ValueError(f"matmul: x has K={x.shape[-1]}, the weight {w.k}")
    return _fallback(x, w, int8_x and not prefill)


def _reset_for_tests() -> None:
    kernels.reset_for_tests()
