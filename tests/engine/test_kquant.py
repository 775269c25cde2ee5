"""GGUF's Q4_K held with its own parameters (kquant.py: 6-bit scale and min codes, d and dmin per 256 weights):
every int4 kernel path multiplies by exactly the values they stand for."""

from __future__ import annotations

import pytest

from playground.engine.fast import int4_kernel as k
from tests.engine.int4_reference import assert_gemm, ref_fp32, ref_int8, rel_err, x_rows


def _k_quant_weight(n: int, k_: int, seed: int) -> k.Int4Weight:
    """An int4 weight holding GGUF Q4_K's own parameters (kquant.py), from random blocks."""
    from playground.engine.fast import gguf_repack, kquant
    from tests.gguf_files import random_blocks

    w = gguf_repack.repack(random_blocks(n, k_, "Q4_K", seed=seed).reshape(-1), "Q4_K", (n, k_))
    assert isinstance(w, k.Int4Weight) and kquant.is_kparams(w.scales)
    return w


@pytest.mark.parametrize("isa", ["avx512", "avx2", "scalar"])
def test_k_quant_parameters_multiply_as_their_values_on_every_path(kernel, isa: str):
    """Q4_K's 6-bit codes and d / dmin per 256 weights, read as they are by every kernel: decode at each row count
    in both modes (one and two super-blocks in a 16-group step: K = 1280 is 40 groups), exact fp32, prefill's GEMM,
    against the dense weight; and the stock-torch fallback."""
    taken = k.set_isa(isa).split()[0]
    if taken != isa:
        pytest.skip(f"this CPU has no {isa} path (takes {taken})")
    for i, (n, k_) in enumerate([(300, 512), (70, 1280)]):
        w = _k_quant_weight(n, k_, seed=20 + i)
        dense = k.dequantize(w).double()
        for t in (1, 2, 3, 9):
            x = x_rows(t, k_, seed=30 + t)
            assert rel_err(k.matmul(x, w), ref_fp32(x, w)) < 2e-6, (isa, n, k_, t)
            assert rel_err(k.matmul(x, w, int8_activations=True), ref_int8(x, w)) < 2e-6, (isa, n, k_, t)
            with k.exact_fp32():
                assert rel_err(k.matmul(x, w), x.double() @ dense.T) < 2e-6, (isa, n, k_, t)
        x = x_rows(40, k_)
        assert_gemm(k.matmul(x, w, prefill=True), x, w)
        assert_gemm(k.matmul(x, w, prefill=True, int8_activations=True), x, w, int8=True)
        assert rel_err(k._fallback(x, w, False), x.double() @ dense.T) < 2e-6
