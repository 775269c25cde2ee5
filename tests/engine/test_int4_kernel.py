"""The int4 and int8 matmul kernels (playground/engine/fast): quantization, kernel and fallback results, the
tiled GEMM of prefill, torch.compile, fallbacks.

The library builds once per session into a shared cache (``PLAYGROUND_KERNEL_CACHE``), not into the per-test data
dir. Where a C++ compiler exists the library must build: these tests fail (not skip) when it does not.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from playground.engine.fast import int4_kernel as k
from playground.engine.fast import int8_kernel, kernel_build, kernels
from tests.engine.int4_reference import assert_gemm, fp32_mode_x, ref_fp32, ref_int8, rel_err, x_rows

SHAPES = [(576, 576), (1536, 576), (576, 1536), (1000, 576)]  # (N, K)


@pytest.fixture(scope="module", autouse=True)
def kernel_cache(tmp_path_factory: pytest.TempPathFactory):
    """One build for the session (the conftest's shared cache: a second library with the same op names in one
    process would abort); every test of this module sees the same cache folder."""
    cache = os.environ.get(k.ENV_CACHE) or str(tmp_path_factory.getbasetemp() / "kernels")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(k.ENV_CACHE, cache)
        mp.delenv(k.ENV_ENABLE, raising=False)
        mp.delenv(k.ENV_ACTIVATIONS, raising=False)
        yield Path(cache)


@pytest.fixture
def fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(k.ENV_ENABLE, "0")


def _weight(n: int, k_: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k_, generator=g) * 0.05
    w[0, :32] = 0.25  # a constant group (scale 0 before the floor)
    return w


# ---------------------------------------------------------------- quantization -------------------------------------


def test_quantize_round_trip_within_half_a_step():
    w = _weight(64, 256)
    w[1, 32:64] = torch.linspace(-3, 5, 32)  # a wide group
    w[2, 64:96] = 1e-9 * torch.arange(32)  # a group narrower than the smallest fp16 scale
    q = k.quantize(w)
    assert (q.n, q.k) == (64, 256)
    assert q.qweight.dtype == torch.uint8 and q.qweight.shape == (64, 128)
    assert q.scales.shape == q.offsets.shape == (64, 8)
    assert bool((q.scales > 0).all())
    deq = k.dequantize(q)
    assert deq.dtype == torch.float32 and deq.shape == w.shape
    err = (deq - w).abs().reshape(64, 8, 32)
    bound = q.scales.float().unsqueeze(-1) / 2 * (1 + 1e-3) + 1e-6 * w.abs().reshape(64, 8, 32)
    assert bool((err <= bound).all()), float((err - bound).max())
    assert torch.equal(deq[0, :32], torch.full((32,), 0.25))  # a constant group comes back exactly


def test_quantize_rejects_bad_shapes_and_huge_weights():
    with pytest.raises(ValueError):
        k.quantize(torch.randn(4, 48))
    with pytest.raises(ValueError):
        k.quantize(torch.full((2, 32), 1e6))


def test_weight_to_and_tensors_round_trip():
    q = k.quantize(_weight(8, 64))
    again = k.Int4Weight.from_tensors(q.to("cpu").tensors())
    assert (again.n, again.k) == (8, 64)
    assert torch.equal(k.dequantize(again), k.dequantize(q))
    assert q.nbytes == 8 * 32 + 2 * 8 * 2 * 2


# ---------------------------------------------------------------- matmul ------------------------------------------


@pytest.mark.parametrize("isa", ["avx512", "avx2", "scalar"])
def test_kernel_matches_reference(kernel, isa: str):
    taken = k.set_isa(isa).split()[0]
    if taken != isa:
        pytest.skip(f"this CPU has no {isa} path (takes {taken})")
    for i, (n, k_) in enumerate(SHAPES):
        w = k.quantize(_weight(n, k_, seed=i))
        for t in (1, 2, 3):  # each x-row count has its own accumulator layout in the kernels
            x = x_rows(t, k_, seed=10 * i + t)
            assert rel_err(k.matmul(x, w), ref_fp32(x, w)) < 2e-6, (isa, n, k_, t)
            assert rel_err(k.matmul(x, w, int8_activations=True), ref_int8(x, w)) < 2e-6, (isa, n, k_, t)


def test_avx2_decode_rounds_x_to_int16_exactly_as_described(kernel):
    """The AVX2 path (every x86-64 CPU; the only one without AVX-512) multiplies fp32 x rounded to int16 per group
    (the int8 mode: x's int8 values, as bytes against int4 weights): asymmetric int4 (offsets meet x's exact sums),
    symmetric Q4_0-style int4 (its implied -8 * scale meets x as rounded) and int8 weights, odd group counts (a last
    group without a pair), every count of a row's last fp16 params short of 8 (read by masked loads) and more rows
    than one pass takes."""
    if k.set_isa("avx2").split()[0] != "avx2":
        pytest.skip("this CPU has no avx2 path")
    assert k.fp32_x_bits() == 16
    for k_ in (544, 160, 96, 896, 224, 192, 320):  # 17, 5, 3, 28, 7, 6 and 10 groups: 1-7 params past the 8s
        w = k.quantize(_weight(37, k_, seed=k_))
        sym = k.Int4Weight(w.n, w.k, w.qweight, w.scales, w.scales[:, :0])  # offsets = -8 * scale, not stored
        q8, s8 = int8_kernel.quantize(_weight(21, k_, seed=k_ + 1))
        for t in (1, 2, 9):
            x = x_rows(t, k_, seed=t)
            x16 = k.quantize_activations(x, bits=16).double()
            assert rel_err(k.matmul(x, w), ref_fp32(x, w)) < 2e-6, (k_, t)
            assert rel_err(k.matmul(x, sym), x16 @ k.dequantize(sym).double().T) < 2e-6, (k_, t)
            assert rel_err(int8_kernel.matmul(x, q8, s8), x16 @ int8_kernel.dequantize(q8, s8).double().T) < 2e-6
            # int4-a8 (the fastest precision): int4 weights against x rounded to int8, as bytes
            assert rel_err(k.matmul(x, w, int8_activations=True), ref_int8(x, w)) < 2e-6, (k_, t)
            assert rel_err(k.matmul(x, sym, int8_activations=True), ref_int8(x, sym)) < 2e-6, (k_, t)
            with k.exact_fp32():  # the exact mode still multiplies x as is
                assert rel_err(k.matmul(x, w), x.double() @ k.dequantize(w).double().T) < 2e-6
        x = x_rows(20, k_)  # prefill's GEMM: int8 weights against x rounded to int16 as well (test_prefill_gemm.py)
        x16 = k.quantize_activations(x, bits=16).double()
        assert rel_err(int8_kernel.matmul(x, q8, s8), x16 @ int8_kernel.dequantize(q8, s8).double().T) < 2e-6


def test_a_fused_group_mixing_int4_and_int8_weights_matches_each_alone(kernel):
    """A GGUF Q4_K_M layer fuses Q4_K and Q6_K / Q8_0 tensors into one group: in either mode each weight kind gets
    x laid out for its own kernel (on AVX2 in the int8 mode: bytes for int4, int16 for int8), the same rows as
    multiplying each weight alone."""
    for k_ in (544, 896):  # 17 and 28 groups
        w4 = k.quantize(_weight(40, k_, seed=k_))
        q8, s8 = int8_kernel.quantize(_weight(24, k_, seed=k_ + 1))
        for t in (1, 3, 9):
            x = x_rows(t, k_, seed=t)
            for int8 in (False, True):
                both = torch.ops.playground.qlinear(x, [*w4.segment(), q8, s8], [1, 2], int8)
                alone = [torch.ops.playground.qlinear(x, w4.segment(), [1], int8),
                         torch.ops.playground.qlinear(x, [q8, s8], [2], int8)]
                assert torch.equal(both, torch.cat(alone, 1)), (k_, t, int8)


def test_kernel_odd_sizes_and_many_rows(kernel):
    """K with an odd number of groups, N not a multiple of the row blocks, T across several 8-row passes, 3-D x;
    from 16 rows on (prefill) the tiled GEMM: fp32, or bf16 where the CPU has AVX512-BF16, in both modes."""
    for n, k_, t in [(37, 96, 9), (5, 32, 17), (70, 160, 8), (300, 64, 40)]:
        w = k.quantize(_weight(n, k_))
        x = x_rows(t, k_)
        assert k.matmul(x, w).shape == (t, n)
        reduced = k.matmul(x, w, int8_activations=True)
        if t < k.GEMM_MIN_T:
            assert rel_err(k.matmul(x, w), ref_fp32(x, w)) < 2e-6
            assert rel_err(reduced, ref_int8(x, w)) < 2e-6
        else:
            assert_gemm(k.matmul(x, w), x, w)
            assert_gemm(reduced, x, w, int8=True)
            with k.exact_fp32():
                assert rel_err(k.matmul(x, w), ref_fp32(x, w)) < 2e-6
    x3 = x_rows(6, 96).reshape(2, 3, 96)
    w = k.quantize(_weight(37, 96))
    assert rel_err(k.matmul(x3, w).reshape(6, 37), ref_fp32(x3.reshape(6, 96), w)) < 2e-6


def test_kernel_splits_rows_over_threads(kernel):
    """Built with OpenMP where torch uses it (else at::parallel_for would silently run on one thread)."""
    if kernel_build.build_flags()[1]:
        assert "openmp" in k.build_info()["isa"]
    w = k.quantize(_weight(1000, 576))
    x = x_rows(3, 576)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert rel_err(k.matmul(x, w), ref_fp32(x, w)) < 2e-6
        assert rel_err(k.matmul(x, w, int8_activations=True), ref_int8(x, w)) < 2e-6
    finally:
        torch.set_num_threads(threads)


def test_int8_activations_stay_close_to_fp32(kernel):
    w = k.quantize(_weight(576, 1536))
    x = x_rows(1, 1536)
    assert rel_err(k.matmul(x, w, int8_activations=True), ref_fp32(x, w)) < 3e-2


def test_env_picks_int8_activations(kernel, monkeypatch: pytest.MonkeyPatch):
    w = k.quantize(_weight(64, 128))
    x = x_rows(2, 128)
    monkeypatch.setenv(k.ENV_ACTIVATIONS, "int8")
    assert torch.equal(k.matmul(x, w), k.matmul(x, w, int8_activations=True))
    assert not torch.equal(k.matmul(x, w), k.matmul(x, w, int8_activations=False))


def test_fallback_matches_reference(fallback):
    assert not k.available()
    for i, (n, k_) in enumerate(SHAPES):
        w = k.quantize(_weight(n, k_, seed=i))
        for t in (1, 3):
            x = x_rows(t, k_, seed=10 * i + t)
            assert rel_err(k.matmul(x, w), ref_fp32(x, w)) < 2e-6, (n, k_, t)
            assert rel_err(k.matmul(x, w, int8_activations=True), ref_int8(x, w)) < 2e-6, (n, k_, t)
    # More rows than one fallback chunk (rows are dequantized ~1 MiB at a time).
    w = k.quantize(_weight(600, 576))
    x = x_rows(2, 576)
    assert rel_err(k.matmul(x, w), ref_fp32(x, w)) < 2e-6


def test_kernel_and_fallback_agree(kernel, monkeypatch: pytest.MonkeyPatch):
    w = k.quantize(_weight(1000, 576))
    x = x_rows(3, 576)
    fast, fast8 = k.matmul(x, w), k.matmul(x, w, int8_activations=True)
    int16 = k.fp32_x_bits() == 16
    monkeypatch.setenv(k.ENV_ENABLE, "0")
    slow, slow8 = k.matmul(x, w), k.matmul(x, w, int8_activations=True)
    assert rel_err(fast, slow.double()) < (5e-5 if int16 else 2e-6)  # the fallback multiplies x as is
    assert rel_err(fast8, slow8.double()) < 2e-6


def test_matmul_under_torch_compile(kernel):
    w = k.quantize(_weight(64, 128))

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(k.matmul(x, w)) * 2 + k.matmul(x, w, int8_activations=True)

    x = x_rows(2, 128)
    compiled = torch.compile(f, fullgraph=True, dynamic=False)  # inductor, as the app would
    assert torch.allclose(compiled(x), f(x), rtol=1e-5, atol=1e-5)

    graphs = []

    def record(gm: torch.fx.GraphModule, inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    assert torch.allclose(torch.compile(f, backend=record, fullgraph=True)(x), f(x), rtol=1e-5, atol=1e-5)
    calls = [n for n in graphs[0].graph.nodes if n.op == "call_function" and "qlinear" in str(n.target)]
    assert len(graphs) == 1 and len(calls) == 2  # one graph, with the kernel (not the fallback) in it


# ---------------------------------------------------------------- availability ------------------------------------


def test_disabled_kernel_reports_why_and_matmul_still_works(fallback):
    assert k.available() is False
    assert k.ENV_ENABLE in (k.unavailable_reason() or "")
    w = k.quantize(_weight(32, 64))
    x = x_rows(1, 64)
    assert rel_err(k.matmul(x, w), ref_fp32(x, w)) < 2e-6


def test_missing_compiler_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv(k.ENV_CACHE, str(tmp_path / "empty-cache"))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    k._reset_for_tests()
    try:
        assert k.available() is False
        reason = k.unavailable_reason() or ""
        assert "compiler" in reason or "AVX2" in reason or "CPUs" in reason, reason
        w = k.quantize(_weight(32, 64))
        x = x_rows(1, 64)
        assert rel_err(k.matmul(x, w), ref_fp32(x, w)) < 2e-6
    finally:
        monkeypatch.undo()
        k._reset_for_tests()  # the next test loads the shared cache's build again


def test_second_process_loads_the_cached_build(kernel, kernel_cache: Path):
    code = (
        "import json\nfrom playground.engine.fast import int4_kernel as k\n"
        "ok = k.available()\nprint(json.dumps(k.build_info()))"
    )
    env = dict(os.environ, **{k.ENV_CACHE: str(kernel_cache)})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    import json

    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["loaded"] is True
    assert info["build_s"] is None and info["load_s"] is not None and info["load_s"] < 5


# ---------------------------------------------------------------- int8 weights ------------------------------------


def test_int8_quantize_round_trip_and_kernel(kernel):
    """Int8 weights (GGUF's Q8_0 layout): within half a step of the input, and the kernel equals the dequantized
    product: fp32 x (as the fp32 mode rounds it), int8 x as the activation rounding says, at every code path and in
    the GEMM."""
    w = _weight(70, 160)
    q, scales = int8_kernel.quantize(w)
    assert q.dtype == torch.int8 and q.shape == (70, 160) and scales.shape == (70, 5)
    deq = int8_kernel.dequantize(q, scales)
    assert bool(((deq - w).abs().reshape(70, 5, 32) <= scales.float().unsqueeze(-1) / 2 * 1.001).all())
    # 17 groups: a whole 16-group block of the AVX512-VNNI loop, then an odd last group
    q17, scales17 = int8_kernel.quantize(_weight(19, 544, seed=3))
    for isa in ("avx512", "avx2", "scalar"):
        if k.set_isa(isa).split()[0] != isa:
            continue
        for qq, ss in ((q, scales), (q17, scales17)):
            d = int8_kernel.dequantize(qq, ss).double()
            for t in (1, 3, 9):
                x = x_rows(t, qq.shape[1], seed=t)
                assert rel_err(int8_kernel.matmul(x, qq, ss), fp32_mode_x(x).double() @ d.T) < 2e-6, (isa, t)
                ref8 = k.quantize_activations(x).double() @ d.T
                assert rel_err(int8_kernel.matmul(x, qq, ss, int8_activations=True), ref8) < 2e-6, (isa, t)
    x = x_rows(33, 160)
    assert rel_err(int8_kernel.matmul(x, q, scales), x.double() @ deq.double().T) < 2e-6


def test_int8_fallback_matches_kernel(kernel, monkeypatch: pytest.MonkeyPatch):
    q, scales = int8_kernel.quantize(_weight(40, 96))
    x = x_rows(3, 96)
    fast = int8_kernel.matmul(x, q, scales, int8_activations=True)
    monkeypatch.setenv(k.ENV_ENABLE, "0")
    slow = int8_kernel.matmul(x, q, scales, int8_activations=True)
    assert rel_err(fast, slow.double()) < 2e-6


def test_prefill_gemm_stays_fp32_without_onednn(kernel):
    """bf16 goes through oneDNN; with it switched off (or a torch built without it) at::mm on bf16 would take plain
    loops: prefill keeps the fp32 GEMM, exact to float rounding."""
    w, x = k.quantize(_weight(70, 160)), x_rows(40, 160)
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        assert not k.gemm_bf16()
        assert "bf16" not in k.build_info()["isa"].split()
        assert rel_err(k.matmul(x, w, prefill=True), ref_fp32(x, w)) < 2e-6
    finally:
        torch.backends.mkldnn.enabled = before


def test_prefill_gemm_reads_a_strided_x_as_its_copy(kernel):
    """Prefill's gated MLP hands the down projection a view of half a wider tensor: same result as its copy, for
    int4 weights (the integer GEMMs, or tiles) and int8 ones (tiles read the view as it is on AVX512-BF16)."""
    w = k.quantize(_weight(70, 160))
    q8, s8 = int8_kernel.quantize(_weight(48, 160))
    wide = x_rows(40, 320)
    view = wide[:, :160]
    assert not view.is_contiguous()
    for exact in (False, True):
        with k.exact_fp32(exact):
            assert torch.equal(k.matmul(view, w, prefill=True), k.matmul(view.contiguous(), w, prefill=True))
            assert torch.equal(int8_kernel.matmul(view, q8, s8, prefill=True),
                               int8_kernel.matmul(view.contiguous(), q8, s8, prefill=True))
    assert_gemm(k.matmul(view, w, prefill=True), view, w)


def test_mixed_segments_in_one_call(kernel):
    """A fused group whose parts differ in format (GGUF: int4 q/k, int8 v) runs as one call: the columns of each
    segment equal that weight alone."""
    a, b = k.quantize(_weight(64, 96, seed=1)), int8_kernel.quantize(_weight(32, 96, seed=2))
    x = x_rows(2, 96)
    out = kernels.op("qlinear")(x, [*a.segment(), *b], [1, 2], False, False)
    assert torch.equal(out[:, :64], k.matmul(x, a)) and torch.equal(out[:, 64:], int8_kernel.matmul(x, *b))


def test_group_writes_into_a_kept_buffer(kernel):
    """Prefill's gate/up product goes into one flat buffer its layers share: the same numbers as a fresh output, in
    the buffer's own memory; a buffer too small (or a call the kernels do not take) gets a fresh output instead."""
    from playground.engine.fast.quant import QLinear
    from playground.engine.fast.weights import Group

    group = Group([QLinear(_weight(64, 96, seed=1), "int4"), QLinear(_weight(32, 96, seed=2), "int8")])
    x = x_rows(20, 96)  # 20 rows: prefill's GEMM
    want = group(x, True)
    buf = torch.full((20 * 96 + 7,), float("nan"))
    got = group(x, True, buf)
    assert got.data_ptr() == buf.data_ptr() and got.shape == (20, 96) and torch.equal(got, want)
    small = torch.empty(20 * 96 - 1)
    again = group(x, True, small)
    assert again.data_ptr() != small.data_ptr() and torch.equal(again, want)
