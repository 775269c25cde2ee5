"""GGUF's 5-bit types (Q5_0, Q5_1, Q5_K) kept at five bits where the int5 kernels run (AVX2, AVX512-VNNI): the
file's values, in 0.625-0.75 bytes a weight where int8 took 1.0625, multiplied by every path (decode with x as int16
or int8, the prefill GEMM, the plain path, the fallback, embedding rows) as the dequantized weight would be, and a
model of such layers giving the exact-fp32 path's logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from playground.engine.fast import gguf_repack, kernels
from playground.engine.fast import int4_kernel as k4
from playground.engine.fast import int5_kernel as k5
from playground.engine.fast.quant import QLinear
from tests.gguf_files import random_blocks


@pytest.fixture
def int5_here() -> None:
    if not k5.runs_here():
        pytest.skip(f"the int5 kernels run on the AVX2 and AVX512-VNNI paths (here: {kernels.build_info().get('isa')})")


@pytest.mark.parametrize("k", [32, 96, 256, 352, 896, 2048])
def test_pack_keeps_every_value_and_takes_five_bits_and_a_quads_header(k):
    values = np.random.default_rng(k).integers(0, 32, (7, k), dtype=np.uint8)
    packed = k5.pack(values)
    groups = k // 32
    assert packed.shape == (7, k5.row_bytes(k)) and k5.row_bytes(k) == 16 * groups + 32 * -(-groups // 8)
    np.testing.assert_array_equal(k5.unpack(packed, k), values)


def _rel(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.double() - want).abs().max() / want.abs().max())


@pytest.mark.parametrize(("quant", "k"), [("Q5_0", 352), ("Q5_0", 896), ("Q5_1", 352), ("Q5_K", 768)])
def test_q5_types_keep_their_five_bits_and_every_path_multiplies_by_them(int5_here, quant, k, monkeypatch):
    """352 = 11 groups (a quad, then three groups: an odd last one), 896 = 28 (Qwen2.5-0.5B's width), 768 = three
    whole quads. Q5_K read in its own blocks (asked for, on AVX512-VNNI) on the VNNI path; the AVX2 and plain paths
    get int5's layout, as a load there makes it."""
    import gguf

    rows = 37
    raw = random_blocks(rows, k, quant, seed=len(quant) + k)
    monkeypatch.setenv(k5.ENV_IN_PLACE, "1")
    w = gguf_repack.repack(raw.reshape(-1), quant, (rows, k))
    in_blocks = w.in_blocks
    assert in_blocks == (quant == "Q5_K" and k5.reads_q5k_blocks())
    monkeypatch.delenv(k5.ENV_IN_PLACE)
    quads = gguf_repack.repack(raw.reshape(-1), quant, (rows, k))
    assert not quads.in_blocks
    assert isinstance(w, k5.Int5Weight) and w.symmetric == (quant == "Q5_0")
    # parameter bytes per group of 32: an fp16 scale (Q5_0), and an offset (Q5_1), or Q5_K's own 2.5 (its 6-bit
    # codes and d / dmin per 256, kept as the file has them); Q5_K's values in its own blocks on AVX512-VNNI
    held = k // 256 * k5.Q5K_BLOCK_BYTES if in_blocks else k5.row_bytes(k)
    assert w.nbytes == rows * (held + k // 32 * {"Q5_0": 2, "Q5_1": 4, "Q5_K": 2.5}[quant])
    ref = gguf.dequantize(raw, gguf.GGMLQuantizationType[quant]).reshape(rows, k).astype(np.float64)
    dense = k5.dequantize(w).double()
    np.testing.assert_allclose(dense.numpy(), ref, rtol=1e-6, atol=1e-9)
    lin = QLinear.wrap(w, "int4")
    ids = torch.tensor([5, 0, 36, 5])
    assert lin.format == "int5" and torch.equal(lin.rows(ids).double(), dense[ids])
    offsets = w.offset_values().double().repeat_interleave(32, 1)
    gen = torch.Generator().manual_seed(k)
    try:
        for isa in (["avx512"] if kernels.vnni512() else []) + ["avx2", "scalar"]:  # this CPU's paths
            kernels.set_isa(isa)
            wi = w if isa == "avx512" else quads
            assert torch.equal(kernels.op("qdequantize")(wi.segment(), [k5.KIND], k).double(), dense), isa
            for t in (1, 3, 9):
                x = torch.randn(t, k, generator=gen)
                if isa == "scalar":  # the plain path: x as is
                    want = x.double() @ dense.T
                else:  # x rounded to int16 meets the values; stored offsets meet x's exact sums, implied ones x16's
                    x16 = k4.quantize_activations(x, bits=16).double()
                    want = x16 @ dense.T if wi.symmetric else x16 @ (dense - offsets).T + x.double() @ offsets.T
                assert _rel(k5.matmul(x, wi), want) < 2e-6, (t, isa)
                x8 = k4.quantize_activations(x).double()
                assert _rel(k5.matmul(x, wi, int8_activations=True), x8 @ dense.T) < 2e-6, (t, isa)
    finally:
        kernels.set_isa("avx512")
    x = torch.randn(40, k, generator=gen)  # the prefill GEMM in integers: x rounded to int8, as for int4 weights
    want8 = k4.quantize_activations(x).double() @ dense.T
    assert _rel(k5.matmul(x, w, prefill=True), want8) < 2e-6
    assert _rel(k5.matmul(x, w, prefill=True, int8_activations=True), want8) < 2e-6
    assert _rel(k5._fallback(x, w, False), x.double() @ dense.T) < 2e-6
    with k4.exact_fp32():  # tiles of dequantized rows through BLAS
        assert _rel(k5.matmul(x, w, prefill=True), x.double() @ dense.T) < 2e-6


def test_a_group_mixing_int5_with_int4_and_int8_weights_matches_each_alone(int5_here):
    """A GGUF layer's fused q/k/v of mixed types (Q4_1, Q5_0, Q8_0 and Q5_1 parts): one kernel call, x prepared
    once for all, in both modes, decode and prefill."""
    from playground.engine.fast.weights import Group

    k = 896
    parts = [gguf_repack.repack(random_blocks(n, k, quant, seed=i).reshape(-1), quant, (n, k))
             for i, (n, quant) in enumerate([(24, "Q4_1"), (8, "Q5_0"), (16, "Q8_0"), (8, "Q5_1")])]
    assert [QLinear.wrap(p, "int4").format for p in parts] == ["int4", "int5", "int8", "int5"]
    for precision in ("int4", "int4-a8"):
        group = Group([QLinear.wrap(p, precision) for p in parts])
        for t, prefill in ((1, False), (5, False), (40, True)):
            x = torch.randn(t, k, generator=torch.Generator().manual_seed(t))
            alone = torch.cat([p(x, prefill) for p in group.parts], -1)
            assert torch.equal(group(x, prefill), alone), (precision, t)


@pytest.mark.parametrize(("quant", "hidden"), [("Q5_K", 256), ("Q5_0", 96)])
def test_a_model_of_q5_layers_runs_int5_on_the_fused_path(int5_here, tmp_path, quant, hidden):
    """Q5_K_M files (most layers Q5_K) and the Q4_K_M files of narrow models (their Q5_0 layers): the fused decode
    and the prefill GEMM give the exact-fp32 path's logits to x's rounding."""
    from playground.engine.gguf_text import load_gguf_text_model
    from tests.gguf_files import fused_against_exact, tiny_model, write_gguf

    path = write_gguf(tiny_model("qwen3", hidden_size=hidden, intermediate_size=2 * hidden), tmp_path / "m.gguf",
                      quant=quant)
    tm = load_gguf_text_model("m", path, device="cpu")
    layer = tm.fast.weights.layers[0]
    assert tm.path == "fused" and {p.format for p in layer.qkv.parts + layer.down.parts} == {"int5"}
    # what the status bar shows: the weights' format, not the precision a float tensor among them would get
    held = {p.format for layer in tm.fast.weights.layers for g in layer.groups() for p in g.parts}
    assert tm.precision_label == "/".join(sorted(held)) and f"repacked to {tm.precision_label}" in tm.describe()
    fast, exact = fused_against_exact(tm, list(range(5, 30)))
    assert float((fast - exact).abs().max() / exact.abs().max()) < 1e-2
    assert torch.equal(fast.argmax(-1), exact.argmax(-1))


def test_playground_int5_0_holds_q5_as_int8_as_before(monkeypatch):
    """The switch for a machine where int8 weights decode faster (fp32 x on few cores): Q5 types re-quantized to
    int8, the format they had before int5."""
    from playground.engine.fast.quant import Int8Group

    monkeypatch.setenv(k5.ENV_ENABLE, "0")
    assert not k5.runs_here()
    raw = random_blocks(4, 256, "Q5_K", seed=2)
    assert isinstance(gguf_repack.repack(raw.reshape(-1), "Q5_K", (4, 256)), Int8Group)


def test_the_prefill_gemm_holds_the_largest_values_without_saturating(int5_here):
    """Every weight 31 against x at its int8 maximum: a group's int16 sums would pass 32767 if kept a whole group
    before widening (int4's 15s fit); the GEMM's result is the exact product."""
    n, k = 16, 256
    w = k5.Int5Weight(n, k, torch.from_numpy(k5.pack(np.full((n, k), 31, np.uint8))),
                      torch.full((n, k // 32), 0.5, dtype=torch.float16), torch.empty(0, dtype=torch.float16))
    x = torch.ones(20, k)  # rounded to int8: 127 * (1 / 127) each
    got = k5.matmul(x, w, prefill=True)
    assert torch.allclose(got, torch.full_like(got, k * 0.5 * (31 - 16)), rtol=1e-5)


@pytest.mark.parametrize("k", [256, 2048])
def test_q5_k_read_in_its_own_blocks_multiplies_exactly_as_its_repacked_copy(int5_here, k, monkeypatch):
    """Asked for, where the AVX512-VNNI kernels run, a Q5_K tensor's values are read from the file's blocks (no copy
    written at load): decode in both x modes, the prefill GEMM with and without panels, dequantizing and embedding
    rows give the repacked int5 copy's numbers bit for bit."""
    monkeypatch.setenv(k5.ENV_IN_PLACE, "1")
    if not k5.reads_q5k_blocks():
        pytest.skip("Q5_K is read in place where the AVX512-VNNI int5 kernels run")
    rows = 45
    raw = random_blocks(rows, k, "Q5_K", seed=k).reshape(-1)
    kept = gguf_repack.repack(raw, "Q5_K", (rows, k))
    assert kept.in_blocks
    monkeypatch.setenv(k5.ENV_IN_PLACE, "0")
    copy = gguf_repack.repack(raw, "Q5_K", (rows, k))
    assert kept.qweight.numpy().base is not None and np.shares_memory(kept.qweight.numpy(), raw)
    assert not np.shares_memory(copy.qweight.numpy(), raw)
    assert torch.equal(kernels.op("qdequantize")(kept.segment(), [k5.KIND], k),
                       kernels.op("qdequantize")(copy.segment(), [k5.KIND], k))
    ids = torch.tensor([44, 0, 7, 7])
    assert torch.equal(QLinear.wrap(kept, "int4").rows(ids), QLinear.wrap(copy, "int4").rows(ids))
    gen = torch.Generator().manual_seed(k)
    for t, prefill in ((1, False), (3, False), (9, False), (5, True), (40, True)):
        x = torch.randn(t, k, generator=gen)
        for a8 in (False, True):
            assert torch.equal(k5.matmul(x, kept, int8_activations=a8, prefill=prefill),
                               k5.matmul(x, copy, int8_activations=a8, prefill=prefill)), (t, prefill, a8)
    dense = k5.dequantize(copy).double()
    try:  # capped below VNNI after the load (a test's or a benchmark's cap): the plain loop reads the blocks
        kernels.set_isa("avx2")
        x = torch.randn(3, k, generator=gen)
        assert _rel(k5.matmul(x, kept), x.double() @ dense.T) < 2e-6
    finally:
        kernels.set_isa("avx512")
