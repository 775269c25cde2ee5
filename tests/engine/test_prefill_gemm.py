"""Prefill's integer GEMMs: on the AVX2 path (csrc/gemm_avx2.cpp) weights multiplied in integers by x rounded per
group (int4, int5 and int6: int8 in either mode, int6 by half groups; int8 weights: int16 as decode rounds it, in
the fp32 mode), run on any x86-64 CPU with AVX2 (the kernels are capped at avx2 here, so AVX-512 machines check it
too); on AVX512-VNNI (csrc/gemm_avx512.cpp) int4, int5 and int6 weights the same way, checked where the CPU has it;
there fewer than 16 rows of int4, int5 and int6 weights skip the panels (csrc/gemm_small.cpp), on AVX2 fewer than 8
of int4 and int5 ones (csrc/gemm_small_avx2.cpp)."""

from __future__ import annotations

import pytest
import torch

from playground.engine.fast import int4_kernel as k
from playground.engine.fast import int8_kernel
from tests.engine.int4_reference import rel_err


@pytest.fixture
def avx2(kernel) -> None:
    if k.set_isa("avx2").split()[0] != "avx2":
        pytest.skip("this CPU has no avx2 path")
    assert k.prefill_gemm() == "int8"


@pytest.fixture(params=["avx2", "avx512"])
def int4_gemm(request, kernel) -> None:
    """Each integer GEMM that takes int4 weights: AVX2's, and AVX512-VNNI's where the CPU has it."""
    wanted = {"avx2": ["avx2"], "avx512": ["avx512", "avx512-vnni"]}[request.param]
    if k.set_isa(request.param).split()[:len(wanted)] != wanted:
        pytest.skip(f"this CPU has no {' '.join(wanted)} path")
    assert k.prefill_gemm() == "int8"


def _rounded(x: torch.Tensor, w: k.Int4Weight, bits: int) -> torch.Tensor:
    """x rounded per group to int8 or int16 times q * scale, plus the offsets times x's group sums: the rounded x's
    for Q4_0's implied -8 * scale and in the int8 mode, exact sums for the int16 mode's stored offsets (as decode
    does)."""
    xr = k.quantize_activations(x, bits=bits).double()
    sums = (xr if w.symmetric or bits == 8 else x.double()).reshape(x.shape[0], -1, k.GROUP).sum(-1)
    return xr @ k._dequantize_rows(w, 0, w.n, offsets=False).double().T + sums @ w.offset_values().double().T


def _symmetric(w: k.Int4Weight) -> k.Int4Weight:
    return k.Int4Weight(w.n, w.k, w.qweight, w.scales, w.scales[:, :0])


def test_prefill_multiplies_x_as_decode_rounds_it(int4_gemm):
    """Odd group counts, row counts around the 8-row panels and the blocks of rows each thread repacks (300 > one
    block at K=544), every tail of x's rows (kernel calls take 4 rows, or 2 in the int16 mode), asymmetric and
    Q4_0-style weights, an outlier in x; the exact mode still multiplies x as is."""
    for k_, n in ((96, 13), (160, 8), (544, 300), (1024, 37)):  # 3, 5, 17 and 32 groups
        w = k.quantize(torch.randn(n, k_, generator=torch.Generator().manual_seed(n)) * 0.05)
        for weight in (w, _symmetric(w)):
            for t in (16, 17, 18, 19):
                x = torch.randn(t, k_, generator=torch.Generator().manual_seed(t))
                x[:, 7] = 40.0  # one outlier per row: its group's scale is set by it
                for int8 in (False, True):  # int4 weights take int8 x in either mode
                    got = k.matmul(x, weight, int8_activations=int8, prefill=True)
                    assert rel_err(got, _rounded(x, weight, 8)) < 2e-6, (k_, n, t, int8)
                with k.exact_fp32():
                    exact = k.matmul(x, weight, prefill=True)
                assert rel_err(exact, x.double() @ k.dequantize(weight).double().T) < 2e-6


def test_prefill_rounds_int4_x_to_int8_in_either_mode_while_decode_keeps_int16(int4_gemm):
    """Prefill's int4 products are the int8 mode's in the fp32 mode too (the same bits), while decode, a row at a
    time, keeps x at int16: within ~1e-5 of exact fp32, where the int8 rounding is hundreds of times further off
    (and costs the embedded model's perplexity nothing measurable: bench/prefill_quality.py)."""
    w = k.quantize(torch.randn(64, 576, generator=torch.Generator().manual_seed(3)) * 0.05)
    x = torch.randn(32, 576, generator=torch.Generator().manual_seed(4))
    exact = x.double() @ k.dequantize(w).double().T
    prefill = k.matmul(x, w, prefill=True)
    assert torch.equal(prefill, k.matmul(x, w, int8_activations=True, prefill=True))
    decode = torch.cat([k.matmul(x[i:i + 1], w) for i in range(4)])
    assert rel_err(decode, exact[:4]) < 5e-5 and rel_err(prefill, exact) > 100 * rel_err(decode, exact[:4])


def test_largest_products_do_not_saturate(int4_gemm):
    """Every q 15 against x at its largest magnitude (each group's int16 sums reach 30480) and x with one large
    value per group: exact results."""
    n, k_ = 16, 256
    q = torch.full((n, k_ // 2), 0xFF, dtype=torch.uint8)  # q = 15: w = 15 * scale - 8 * scale = 7
    w = k.Int4Weight(n, k_, q, torch.ones(n, k_ // 32, dtype=torch.float16), torch.empty(n, 0, dtype=torch.float16))
    for x in (torch.full((16, k_), -1.0), torch.full((16, k_), 1.0)):
        for int8 in (False, True):
            assert torch.allclose(k.matmul(x, w, int8_activations=int8, prefill=True), x @ k.dequantize(w).T,
                                  rtol=1e-6), int8
    x = torch.full((16, k_), 128.0)
    x[:, ::32] = 32639.0
    assert rel_err(k.matmul(x, w, prefill=True), _rounded(x, w, 8)) < 2e-6


def test_a_position_does_not_depend_on_how_many_ran_with_it(int4_gemm):
    """Prefill's promise (a prompt split differently computes the same): row i's result is bit for bit the same
    whichever kernel tail it fell in."""
    w = k.quantize(torch.randn(40, 320, generator=torch.Generator().manual_seed(5)) * 0.05)
    x = torch.randn(23, 320, generator=torch.Generator().manual_seed(6))
    for int8 in (False, True):
        whole = k.matmul(x, w, int8_activations=int8, prefill=True)
        for t in (16, 17, 18, 21):
            part = k.matmul(x[:t], w, int8_activations=int8, prefill=True)
            assert torch.equal(part, whole[:t]), (int8, t)


@pytest.mark.parametrize(("quant", "isa"), [(q, isa) for isa in ("avx512", "avx2")
                                            for q in ("Q4_0", "Q4_1", "Q4_K", "Q5_0", "Q5_K", "Q6_K")])
def test_a_short_prompt_computes_what_it_computes_in_a_long_one(kernel, quant, isa):
    """A few rows of x skip the panels (a new prompt after a cached source, a chat's next turn): on AVX512-VNNI
    (csrc/gemm_small.cpp) int4, int5 and int6 weights under 16 rows, on the AVX2 path (gemm_small_avx2.cpp) int4
    and int5 ones under 8. Every row, bit for bit, what the panel GEMM gives it among 40, for stored, implied and
    K-quant offsets and int6's half groups, group counts that are not whole 16s, 8s or 4s, rows that are not whole
    16s."""
    from playground.engine.fast import gguf_repack, int5_kernel, int6_kernel
    from tests.gguf_files import random_blocks

    wanted = {"avx512": ["avx512", "avx512-vnni"], "avx2": ["avx2"]}[isa]
    if k.set_isa(isa).split()[:len(wanted)] != wanted:
        pytest.skip(f"this CPU has no {' '.join(wanted)} path")
    fmt = {"Q5": int5_kernel, "Q6": int6_kernel}.get(quant[:2], k)
    for n, k_ in ((37, 256), (16, 288), (50, 896), (33, 2048), (20, 768)):
        if quant.endswith("_K") and k_ % 256:
            continue
        w = gguf_repack.repack(random_blocks(n, k_, quant, seed=n).reshape(-1), quant, (n, k_))
        x = torch.randn(40, k_, generator=torch.Generator().manual_seed(k_))
        reference = k.quantize_activations(x).double() @ fmt.dequantize(w).double().T
        for int8 in (False, True):
            whole = fmt.matmul(x, w, int8_activations=int8, prefill=True)
            assert rel_err(whole, reference) < 2e-6
            for t in (1, 2, 5, 15, 16):
                assert torch.equal(fmt.matmul(x[:t], w, int8_activations=int8, prefill=True), whole[:t]), (n, k_, t)


def test_int8_weights_multiply_int16_x_beside_int4_in_one_call(avx2):
    """A fused group with an int8 part (GGUF: Q5_0 or Q8_0 beside Q4_K), odd row and group counts: in the fp32 mode
    the int8 columns multiply x rounded to int16 (vpmaddwd on the weights widened) while the int4 ones take int8 x;
    in the int8 mode the int8 columns keep the fp32 tile GEMM."""
    from playground.engine.fast import kernels

    for k_, n8 in ((96, 16), (160, 37), (544, 300)):
        a = k.quantize(torch.randn(24, k_, generator=torch.Generator().manual_seed(7)) * 0.05)
        q8, s8 = int8_kernel.quantize(torch.randn(n8, k_, generator=torch.Generator().manual_seed(8)) * 0.05)
        w8 = int8_kernel.dequantize(q8, s8).double()
        for t in (16, 19):
            x = torch.randn(t, k_, generator=torch.Generator().manual_seed(t))
            out = kernels.op("qlinear")(x, [*a.segment(), q8, s8], [1, 2], False, True, True)
            assert rel_err(out[:, :24], _rounded(x, a, 8)) < 2e-6
            assert rel_err(out[:, 24:], k.quantize_activations(x, bits=16).double() @ w8.T) < 2e-6, (k_, n8, t)
            int8 = kernels.op("qlinear")(x, [*a.segment(), q8, s8], [1, 2], True, True, True)
            assert rel_err(int8[:, :24], _rounded(x, a, 8)) < 2e-6
            assert rel_err(int8[:, 24:], x.double() @ w8.T) < 2e-6


def test_int6_weights_multiply_int8_x_by_half_groups_beside_int4_in_one_call(int4_gemm):
    """Q6_K's int6 weights (values 0..63 less 32, a scale per 16) in each integer GEMM, in one call with int4
    weights (a Q4_K_M file's fused q/k/v with a Q6_K V), rows around the 8- and 16-row panels and a single row: x
    rounded per group to int8 in either mode, each half group scaled by its own scale, the -32 meeting x as
    rounded. (On AVX2 they had met x as int16 through vpmaddwd, at half int4's speed per product.)"""
    from playground.engine.fast import gguf_repack, int6_kernel, kernels
    from tests.gguf_files import random_blocks

    if not int6_kernel.runs_here():
        pytest.skip("no int6 kernel here")
    for k_, n6 in ((256, 16), (512, 37), (768, 300)):
        a = k.quantize(torch.randn(24, k_, generator=torch.Generator().manual_seed(7)) * 0.05)
        w6 = gguf_repack.repack(random_blocks(n6, k_, "Q6_K", seed=k_).reshape(-1), "Q6_K", (n6, k_))
        assert isinstance(w6, int6_kernel.Int6Weight)
        dense6 = int6_kernel.dequantize(w6).double()
        for t in (1, 7, 16, 19, 40):
            x = torch.randn(t, k_, generator=torch.Generator().manual_seed(t))
            for int8 in (False, True):
                out = kernels.op("qlinear")(x, [*a.segment(), *w6.segment()], [1, 3], int8, True, True)
                assert rel_err(out[:, :24], _rounded(x, a, 8)) < 2e-6
                assert rel_err(out[:, 24:], k.quantize_activations(x).double() @ dense6.T) < 2e-6, (k_, n6, t, int8)
