"""Each GGUF tensor type the loader reads becomes the engine's format holding gguf-py's own dequantized values:
exactly for the types whose blocks are the engine's format (Q4_0, Q4_1, Q5_0, Q8_0, IQ4_NL, F16, BF16; Q5_1 where
the int5 kernel runs; Q4_K, and Q5_K as int5, whose own parameters are kept), within the fp16 rounding of a
sub-block's scale for IQ4_XS, and
within half an int8 step of each group for the re-quantized ones (Q5_1, Q5_K, Q6_K, Q2_K, Q3_K where held as int8).
Random blocks of every bit pattern, not just what a quantizer writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from playground.engine.fast import gguf_repack
from playground.engine.fast import int5_kernel as k5
from playground.engine.fast.int4_kernel import Int4Weight
from playground.engine.fast.quant import Int8Group, QLinear
from playground.engine.fast.weights import Group
from playground.errors import UnsupportedModel
from tests.gguf_files import random_blocks

ROWS, K = 24, 512


def _reference(raw: np.ndarray, quant: str) -> np.ndarray:
    import gguf

    return gguf.dequantize(raw, gguf.GGMLQuantizationType[quant]).reshape(ROWS, K).astype(np.float64)


@pytest.mark.parametrize("quant", ["Q4_0", "Q4_1", "Q5_0", "Q8_0", "IQ4_NL"])
def test_exact_types_dequantize_to_gguf_py_values(quant):
    raw = random_blocks(ROWS, K, quant, seed=3)
    w = gguf_repack.repack(raw.reshape(-1), quant, (ROWS, K))
    held = k5.Int5Weight if quant == "Q5_0" and k5.runs_here() else Int8Group  # (int5: its five bits, below)
    assert isinstance(w, Int4Weight if quant.startswith("Q4") else held)
    got = gguf_repack.dequantize(w).double().numpy()
    np.testing.assert_allclose(got, _reference(raw, quant), rtol=1e-6, atol=1e-9)


def test_q4_k_keeps_its_own_parameters_and_dequantizes_exactly():
    """Q4_K's 6-bit scale / min codes and d / dmin are held as the file has them (kquant.py): gguf-py's values
    exactly, 4.5 + 0.078 bits a weight (fp16 scales and offsets per group took 5)."""
    raw = random_blocks(ROWS, K, "Q4_K", seed=4)
    w = gguf_repack.repack(raw.reshape(-1), "Q4_K", (ROWS, K))
    assert isinstance(w, Int4Weight) and not w.symmetric
    assert w.nbytes == ROWS * (K // 2 + K // 256 * 20)
    np.testing.assert_allclose(gguf_repack.dequantize(w).double().numpy(), _reference(raw, "Q4_K"), rtol=1e-6,
                               atol=1e-9)


def test_iq4_xs_keeps_its_table_values_with_each_sub_blocks_scale_rounded_to_fp16():
    """IQ4_XS: 4-bit indices into a non-linear table of int8 values, a 6-bit scale per 32 weights: int8 of the
    table values themselves, each group's scale d * (scale - 32) in fp16."""
    raw = random_blocks(ROWS, K, "IQ4_XS", seed=11)
    w = gguf_repack.repack(raw.reshape(-1), "IQ4_XS", (ROWS, K))
    assert isinstance(w, Int8Group)
    assert set(np.unique(w.qweight.numpy())) <= set(gguf_repack.IQ4_VALUES.tolist())
    ref = _reference(raw, "IQ4_XS")
    err = np.abs(gguf_repack.dequantize(w).double().numpy() - ref)
    assert np.all(err <= 2.0**-11 * np.abs(ref) + 1e-12)


@pytest.mark.parametrize("native", [None, False])
def test_an_int8_scale_beyond_fp16_is_refused_by_name(native):
    """A block whose d times its sub-block scale does not fit fp16 (a damaged or hostile file) is refused, naming
    the type, by the compiled repack and the numpy one alike."""
    raw = random_blocks(ROWS, K, "IQ4_XS", seed=12)
    blocks = raw.reshape(ROWS, -1, 136)
    blocks[0, 0, 0:2] = np.array([60000], np.float16).view(np.uint8)  # d; times (scale - 32) = -32 for scale 0
    blocks[0, 0, 2:8] = 0
    with pytest.raises(UnsupportedModel, match="IQ4_XS scales are not all finite"):
        gguf_repack.repack(raw.reshape(-1), "IQ4_XS", (ROWS, K), native=native)


@pytest.mark.parametrize("native", [None, False])
@pytest.mark.parametrize("quant", ["Q4_0", "Q4_1", "Q8_0"])
def test_a_nan_block_scale_is_refused(quant, native):
    """A block whose fp16 d is NaN (a damaged file) is refused at load, by the compiled repack and the numpy one:
    the symmetric Q4_0 (no offsets to check) had loaded, and its NaN logits failed only at sampling."""
    size = gguf_repack.BLOCKS[quant][1]
    raw = random_blocks(ROWS, K, quant, seed=13)
    raw.reshape(ROWS, -1, size)[1, 2, 0:2] = np.array([np.nan], np.float16).view(np.uint8)
    with pytest.raises(UnsupportedModel, match=f"{quant} scales are not all finite"):
        gguf_repack.repack(raw.reshape(-1), quant, (ROWS, K), native=native)


@pytest.mark.parametrize(("quant", "at"), [("Q4_K", 0), ("Q4_K", 2), ("Q5_K", 2), ("Q6_K", 208)])
def test_a_nan_k_quant_scale_is_refused_where_its_own_parameters_are_kept(quant, at):
    """Q4_K / Q5_K (d at 0, dmin at 2) and Q6_K (d at 208) keep their fp16 d / dmin as the file has them: a NaN
    one (a damaged file) is refused at load as the fp16 scales were."""
    size = gguf_repack.BLOCKS[quant][1]
    raw = random_blocks(ROWS, K, quant, seed=14)
    raw.reshape(ROWS, -1, size)[3, 1, at:at + 2] = np.array([np.nan], np.float16).view(np.uint8)
    with pytest.raises(UnsupportedModel, match=f"{quant} scales are not all finite"):
        gguf_repack.repack(raw.reshape(-1), quant, (ROWS, K))


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("layout", ["flat", "rows", "d_and_dmin"])
def test_one_nan_or_inf_half_is_found_wherever_it_sits(layout, compiled, monkeypatch):
    """The load's check of fp16 parameters (the library's pass on every core, else numpy's) finds one NaN or inf,
    of either sign, at the first, a middle and the last place of a whole array, of rows, and of the strided view
    of K-quant parameters' d and dmin, and nothing in finite values (the largest fp16 included)."""
    from playground.engine.fast import kernels, kquant

    if not compiled:
        monkeypatch.setattr(kernels, "available", lambda: False)
    rng = np.random.default_rng(3)

    def halves(values: np.ndarray) -> np.ndarray:
        if layout == "flat":
            return values.view(np.uint16)
        if layout == "rows":
            return values.view(np.uint16).reshape(32, -1)
        params = rng.integers(0, 256, (values.size // 2, kquant.SUPER_BYTES), dtype=np.uint8)
        view = kquant.halves(params)  # [blocks, 2]: d and dmin, 20 bytes apart
        view[...] = values.view(np.uint16).reshape(view.shape)
        return view

    values = rng.standard_normal(2048).astype(np.float16)
    values[7] = np.float16(65504)
    assert not gguf_repack._nonfinite(halves(values).view(np.int16))
    for at in (0, 1023, 2047):
        for bad in (np.inf, -np.inf, np.nan):
            broken = values.copy()
            broken[at] = bad
            assert gguf_repack._nonfinite(halves(broken).view(np.int16)), (at, bad)


@pytest.mark.parametrize("quant", ["Q5_1", "Q5_K", "Q6_K", "Q2_K", "Q3_K"])
def test_requantized_types_are_within_half_an_int8_step_of_gguf_py_values(quant):
    """(Q6_K and the Q5 types through the numpy repack where the int6 / int5 kernel runs: there the loader keeps
    their bits, tested below; the compiled int8 repacks are held to the numpy ones further down.)"""
    raw = random_blocks(ROWS, K, quant, seed=5)
    kept = quant == "Q6_K" or (quant.startswith("Q5") and k5.runs_here())
    w = gguf_repack.repack(raw.reshape(-1), quant, (ROWS, K), native=False if kept else None)
    assert isinstance(w, Int8Group)
    ref = _reference(raw, quant)
    got = gguf_repack.dequantize(w).double().numpy()
    step = np.repeat(w.scales.double().numpy(), 32, axis=1)
    assert np.all(np.abs(got - ref) <= step / 2 * (1 + 1e-3))
    # and the step is what int8 of the group's range gives: no needless precision loss
    assert np.median(step * 127 / np.maximum(np.abs(ref).reshape(ROWS, -1, 32).max(-1).repeat(32, 1), 1e-12)) < 1.6


@pytest.mark.parametrize("quant", ["F16", "BF16"])
def test_float_types_are_views_with_gguf_py_values(quant):
    import gguf

    data = np.random.default_rng(6).normal(0, 0.1, (ROWS, K)).astype(np.float32)
    raw = gguf.quantize(data, gguf.GGMLQuantizationType[quant]).view(np.uint8).reshape(-1)
    w = gguf_repack.repack(raw, quant, (ROWS, K))
    assert w.dtype == (torch.float16 if quant == "F16" else torch.bfloat16)
    assert w.data_ptr() == raw.ctypes.data  # no copy
    stored = raw.reshape(ROWS, -1) if quant == "BF16" else raw.view(np.float16).reshape(ROWS, K)
    ref = gguf.dequantize(stored, gguf.GGMLQuantizationType[quant])
    np.testing.assert_array_equal(w.float().numpy(), ref.reshape(ROWS, K))


def test_row_order_can_be_undone_while_repacking():
    raw = random_blocks(ROWS, K, "Q4_0", seed=7)
    rows = np.random.default_rng(8).permutation(ROWS)
    w = gguf_repack.repack(raw.reshape(-1), "Q4_0", (ROWS, K), rows)
    np.testing.assert_allclose(gguf_repack.dequantize(w).double().numpy(), _reference(raw, "Q4_0")[rows], rtol=1e-6)


def test_an_unsupported_type_is_named():
    with pytest.raises(UnsupportedModel, match="IQ2_XS"):
        gguf_repack.repack(np.zeros(74 * 2, np.uint8), "IQ2_XS", (1, 512))


@pytest.mark.parametrize("quant", ["Q4_0", "Q4_1", "Q4_K", "Q5_0", "Q8_0", "Q6_K", "Q5_K", "Q2_K", "Q3_K", "IQ4_NL",
                                   "IQ4_XS"])
def test_compiled_repack_gives_the_numpy_repacks_weights(quant):
    """The C++ repack (the loader's path where the kernel library is built) and the numpy one produce the same
    weights: Q4_0, Q4_1, Q4_K, Q5_0, Q8_0, IQ4_NL and IQ4_XS bit for bit; the re-quantized Q6_K, Q5_K, Q2_K and
    Q3_K with the same scales and at most a last-bit tie rounded the other way."""
    from playground.engine.fast import kernels

    if not kernels.available():
        pytest.skip(f"no kernel library here: {kernels.unavailable_reason()}")
    raw = random_blocks(ROWS, K, quant, seed=9).reshape(-1)
    rows = np.random.default_rng(10).permutation(ROWS)
    if quant in ("Q6_K", "Q5_0", "Q5_K"):  # their int8 repacks: where the int6 / int5 kernel does not run (capped)
        kernels.set_isa("scalar")
    try:
        native, numpy_ = (gguf_repack.repack(raw, quant, (ROWS, K), rows, native=n) for n in (None, False))
    finally:
        kernels.set_isa("avx512")
    if quant == "Q5_0":  # its SIMD loop and the plain one both
        kernels.set_isa("scalar")
        try:
            plain = gguf_repack.repack(raw, quant, (ROWS, K), rows)
        finally:
            kernels.set_isa("avx512")
        assert all(torch.equal(a, b) for a, b in zip(plain.segment(), numpy_.segment(), strict=True))
    if quant not in ("Q6_K", "Q5_K", "Q2_K", "Q3_K"):
        for a, b in zip(native.segment(), numpy_.segment(), strict=True):
            assert torch.equal(a, b)
    else:
        assert torch.equal(native.scales, numpy_.scales)
        diff = (native.qweight.int() - numpy_.qweight.int()).abs()
        assert int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 1e-3


def test_the_gguf_tokenizer_and_the_token_bytes_share_gpt2s_byte_alphabet():
    """One byte -> character table serves both the GGUF tokenizer builder and the ``bytes`` of scored tokens: it
    is the set ``tokenizers`` itself uses, one character per byte, and reversing it gives every byte back."""
    from tokenizers import pre_tokenizers

    from playground.engine.token_bytes import _byte_decoder, byte_chars

    chars = byte_chars()
    assert len(set(chars)) == 256 and set(chars) == set(pre_tokenizers.ByteLevel.alphabet())
    assert chars[ord("A")] == "A" and chars[ord(" ")] == "\u0120"  # GPT-2's "Ġ" for a space
    assert [_byte_decoder()[c] for c in chars] == list(range(256))


def test_q4_0_keeps_its_offsets_implied_and_multiplies_as_if_stored():
    """Q4_0 is symmetric (w = d * (q - 8)): the repack stores no offsets (a tenth fewer bytes for decode to read)
    and every matmul path gives what the same weight with its offsets written out gives: decode with fp32 and
    int8 x, the prefill GEMM, a group's segments with and without offsets, and embedding rows."""
    from playground.engine.fast import int4_kernel as k

    raw = random_blocks(ROWS, K, "Q4_0", seed=5).reshape(-1)
    w = gguf_repack.repack(raw, "Q4_0", (ROWS, K))
    assert w.symmetric and w.offsets.numel() == 0
    explicit = Int4Weight(w.n, w.k, w.qweight, w.scales, w.scales * -8)
    assert w.nbytes == explicit.nbytes - ROWS * (K // 32) * 2
    np.testing.assert_allclose(k.dequantize(w).double().numpy(), _reference(raw.reshape(ROWS, -1), "Q4_0"),
                               rtol=1e-6, atol=1e-9)
    for t in (1, 3, 20):  # 20 rows: the tiled GEMM
        x = torch.randn(t, K, generator=torch.Generator().manual_seed(t))
        gemm8 = t >= k.GEMM_MIN_T and k.prefill_gemm() == "int8"  # the AVX2 prefill GEMM: int8 x in either mode
        if k.fp32_x_bits() == 16 and (t < k.GEMM_MIN_T or gemm8):
            # Decode where x is rounded to int16 (and the AVX2 prefill GEMM): the implied offset meets -8 * the
            # rounded x's group sums (int16 in the fp32 mode, int8 in the int8 mode, as llama.cpp's Q4_0 x Q8_0)
            for bits, int8 in ((8 if gemm8 else 16, False), (8, True)):
                ref = k.quantize_activations(x, bits=bits).double() @ k.dequantize(w).double().T
                got = k.matmul(x, w, int8_activations=int8).double()
                assert float((got - ref).abs().max() / ref.abs().max()) < 2e-6, (t, bits)
        else:
            assert torch.equal(k.matmul(x, w), k.matmul(x, explicit)), t
        if t < k.GEMM_MIN_T:  # every code path and the fallback: the implied offset meets x as int8-rounded
            ref8 = k.quantize_activations(x).double() @ k.dequantize(w).double().T
            paths = [k._fallback(x, w, True)]
            try:
                for isa in ("avx512", "avx2", "scalar") if k.available() else ():
                    k.set_isa(isa)
                    paths.append(k.matmul(x, w, int8_activations=True))
            finally:
                if k.available():
                    k.set_isa("avx512")
            for got in paths:
                assert float((got.double() - ref8).abs().max() / ref8.abs().max()) < 2e-6, t
        elif k.prefill_gemm() != "int8":  # tiles dequantized for a BLAS GEMM: the same as offsets written out
            assert torch.equal(k.matmul(x, w, int8_activations=True), k.matmul(x, explicit, int8_activations=True)), t
    if k.fp32_x_bits() == 16:  # 17 groups: four whole quads, then a last group on its own
        w17 = gguf_repack.repack(random_blocks(5, 544, "Q4_0", seed=7).reshape(-1), "Q4_0", (5, 544))
        for t in (1, 3):
            x = torch.randn(t, 544, generator=torch.Generator().manual_seed(t))
            for bits, int8 in ((16, False), (8, True)):
                ref = k.quantize_activations(x, bits=bits).double() @ k.dequantize(w17).double().T
                got = k.matmul(x, w17, int8_activations=int8).double()
                assert float((got - ref).abs().max() / ref.abs().max()) < 2e-6, (t, bits)
    q4_1 = gguf_repack.repack(random_blocks(ROWS, K, "Q4_1", seed=6).reshape(-1), "Q4_1", (ROWS, K))
    group = Group([QLinear.wrap(w, "int4"), QLinear.wrap(q4_1, "int4")])  # a GGUF's q and k: two segments
    x = torch.randn(2, K, generator=torch.Generator().manual_seed(9))
    y = torch.ops.playground.qlinear(x, [t for _, ts in group.kernel_segments() for t in ts], [1, 1]) \
        if k.available() else group(x)
    assert torch.equal(y, torch.cat([k.matmul(x, w), k.matmul(x, q4_1)], -1))
    for t, prefill in ((2, False), (40, True)):  # the group as the runner calls it: one kernel call for both parts
        x = torch.randn(t, K, generator=torch.Generator().manual_seed(10 + t))
        parts = torch.cat([k.matmul(x, w, prefill=prefill), k.matmul(x, q4_1, prefill=prefill)], -1)
        assert torch.allclose(group(x, prefill), parts, rtol=2 ** -8, atol=1e-6 * float(parts.abs().max())), t
    ids = torch.tensor([3, 0, 17])
    assert torch.equal(k.dequantize_rows(w, ids), k.dequantize(w)[ids])


def test_q6_k_keeps_its_six_bits_where_the_int6_kernel_runs():
    """Where the int6 kernel runs (AVX512-VNNI, AVX2) a Q6_K tensor loads as int6 at the file's own 0.82 bytes a
    weight (int8 took 1.0625), its sub-scales and d kept: gguf-py's values, and every path multiplies by exactly
    those values: decode with x as int16 or int8 (AVX512-VNNI's kernel and AVX2's), batched rows, the prefill GEMMs
    (in integers), the plain path, the kernels' dequantization, and embedding rows of a tied head."""
    import gguf

    from playground.engine.fast import int4_kernel as k4
    from playground.engine.fast import int6_kernel as k6
    from playground.engine.fast import kernels

    if not k6.runs_here():
        pytest.skip(f"no int6 kernel here ({kernels.build_info().get('isa') or kernels.unavailable_reason()})")
    rows, k = 40, 1024
    raw = random_blocks(rows, k, "Q6_K", seed=7)
    w = gguf_repack.repack(raw.reshape(-1), "Q6_K", (rows, k))
    assert isinstance(w, k6.Int6Weight) and w.nbytes == rows * k // 256 * 210  # Q6_K's own size
    ref = gguf.dequantize(raw, gguf.GGMLQuantizationType.Q6_K).reshape(rows, k).astype(np.float64)
    dense = k6.dequantize(w).double()
    np.testing.assert_allclose(dense.numpy(), ref, rtol=1e-6, atol=1e-9)
    lin = QLinear.wrap(w, "int4")
    ids = torch.tensor([5, 0, 39, 5])
    assert lin.format == "int6" and torch.equal(lin.rows(ids).double(), dense[ids])

    def rel(got: torch.Tensor, want: torch.Tensor) -> float:
        return float((got.double() - want).abs().max() / want.abs().max())

    gen = torch.Generator().manual_seed(3)
    isas = (["avx512"] if kernels.vnni512() else []) + ["avx2", "scalar"]  # this CPU's paths, down to the plain one
    try:
        for isa in isas:
            kernels.set_isa(isa)
            assert torch.equal(kernels.op("qdequantize")(w.segment(), [k6.KIND], k).double(), dense), isa
            for t in (1, 3, 9):
                x = torch.randn(t, k, generator=gen)
                x16 = x if isa == "scalar" else k4.quantize_activations(x, bits=16)  # the plain path: x as is
                assert rel(k6.matmul(x, w), x16.double() @ dense.T) < 2e-6, (t, isa)
                x8 = k4.quantize_activations(x).double()
                assert rel(k6.matmul(x, w, int8_activations=True), x8 @ dense.T) < 2e-6, (t, isa)
    finally:
        kernels.set_isa("avx512")
    x = torch.randn(20, k, generator=gen)
    if kernels.int16_avx2() or kernels.vnni512():  # the prefill GEMMs, in integers: x rounded to int8, either mode
        x8 = k4.quantize_activations(x).double()
        assert rel(k6.matmul(x, w, prefill=True), x8 @ dense.T) < 2e-6
        assert rel(k6.matmul(x, w, int8_activations=True, prefill=True), x8 @ dense.T) < 2e-6
    assert rel(k6.matmul(x, w, prefill=True), x.double() @ dense.T) < 2e-2  # (tiles: bf16 where the CPU has it)
    assert rel(k6._fallback(x, w, False), x.double() @ dense.T) < 2e-6


def test_a_q6_k_head_stays_int6_and_the_fused_decode_reads_it(tmp_path):
    """Q4_0 and Q4_K_M files store the LM head (often tied to the embedding) as Q6_K, and Q4_K_M some V and down
    projections: they load as int6 wherever the int6 kernel runs, and the fused decode (x rounded to int16) and the
    prefill GEMM give the exact-fp32 path's logits to their roundings (prefill multiplies int6 weights in integers
    with x rounded to int8 on AVX512-VNNI and AVX2, or the int8 head in bf16 tiles: int8's and bf16's roundings)."""
    from playground.engine.fast import int4_kernel as k4
    from playground.engine.fast import int6_kernel as k6
    from playground.engine.fast import kernels
    from playground.engine.gguf_text import load_gguf_text_model
    from tests.gguf_files import fused_against_exact, tiny_model, write_gguf

    if not k6.runs_here():
        pytest.skip("no int6 kernel here")
    path = write_gguf(tiny_model("qwen3", hidden_size=256, intermediate_size=256), tmp_path / "m.gguf", quant="Q6_K")
    tm = load_gguf_text_model("m", path, device="cpu")
    assert tm.path == "fused" and tm.fast.weights.head.format == "int6"
    fast, exact = fused_against_exact(tm, list(range(5, 30)))
    with k4.exact_fp32(False):
        reduced = k4.tiles_bf16() or kernels.vnni512() or kernels.int16_avx2()
    assert float((fast - exact).abs().max() / exact.abs().max()) < (2e-2 if reduced else 1e-3)
    assert torch.equal(fast.argmax(-1), exact.argmax(-1))
