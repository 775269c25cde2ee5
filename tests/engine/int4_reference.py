"""What the int4 kernels compute, in plain torch (float64): the references the int4 kernel tests hold every path
to, in each activation mode, decode and prefill."""

from __future__ import annotations

import torch

from playground.engine.fast import int4_kernel as k


def x_rows(t: int, k_: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(t, k_, generator=torch.Generator().manual_seed(seed))


def rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    return ((got.double() - ref).abs().max() / ref.abs().max()).item()


def fp32_mode_x(x: torch.Tensor) -> torch.Tensor:
    """What the fp32 mode's decode multiplies by now: on AVX512-VNNI and AVX2 x rounded to int16 per group; else x
    as is (prefill's GEMM on AVX2 rounds it to int8: ``ref_fp32`` sends it to ``ref_int8``)."""
    x2 = x.reshape(-1, x.shape[-1])
    if k.fp32_x_bits() == 16 and x2.shape[0] < k.GEMM_MIN_T:
        return k.quantize_activations(x2, bits=16).reshape(x.shape)
    return x


def ref_fp32(x: torch.Tensor, w: k.Int4Weight) -> torch.Tensor:
    """The fp32 mode: x @ dequantize(w).T, with x as that mode multiplies it (the offsets meet x's exact group sums
    at int16; prefill's int8 GEMM on AVX2 is the int8 mode's)."""
    if x.reshape(-1, x.shape[-1]).shape[0] >= k.GEMM_MIN_T and k.prefill_gemm() == "int8":
        return ref_int8(x.reshape(-1, x.shape[-1]), w).reshape(*x.shape[:-1], w.n)
    xr = fp32_mode_x(x)
    if xr is x:
        return x.double() @ k.dequantize(w).double().T
    qs = k._dequantize_rows(w, 0, w.n, offsets=False).double()
    sums = x.double().reshape(*x.shape[:-1], -1, k.GROUP).sum(-1)
    return xr.double() @ qs.T + sums @ w.offset_values().double().T


def ref_int8(x: torch.Tensor, w: k.Int4Weight) -> torch.Tensor:
    """What the int8-activation mode computes: the weights against quantized x (the offsets meet x as rounded)."""
    return k.quantize_activations(x).double() @ k.dequantize(w).double().T


def ref_bf16(x: torch.Tensor, w: k.Int4Weight) -> torch.Tensor:
    """What the bf16 prefill GEMM sums: weights and x rounded to bf16 (the sum is then rounded to bf16 once)."""
    return x.bfloat16().double() @ k.dequantize(w).bfloat16().double().T


def assert_gemm(got: torch.Tensor, x: torch.Tensor, w: k.Int4Weight, int8: bool = False) -> None:
    """The prefill GEMM: to float rounding of fp32 arithmetic on x as the mode rounds it where it runs in integers
    (AVX2: int16, or int8 in the int8 mode) or as is; where it runs in bf16, each result within one bf16 rounding
    (2^-8 relative, with room for the fp32 summation order) of the bf16 inputs' exact sum."""
    if not k.gemm_bf16():
        ref = ref_int8(x, w) if int8 and k.prefill_gemm() == "int8" else ref_fp32(x, w)
        assert rel_err(got, ref) < 2e-6
        return
    ref = ref_bf16(x, w)
    assert ((got.double() - ref).abs() <= 2 ** -8 * ref.abs() + 1e-6 * ref.abs().max()).all()
