"""Fixtures shared by the engine tests."""

from __future__ import annotations

import pytest

from playground.engine.fast import int4_kernel, kernels


@pytest.fixture
def exact_fp32():
    """For checks against fp32 arithmetic to float rounding: the kernels multiply fp32 x as is (on AVX512-VNNI decode
    otherwise rounds it to int16) and prefill's GEMM runs in fp32 (bf16 on CPUs with AVX512-BF16 otherwise).
    test_families covers both reduced modes against this one."""
    with int4_kernel.exact_fp32():
        yield


@pytest.fixture
def kernel() -> None:
    """The compiled library: required where a compiler exists (a failed build fails here); skipped only on a
    machine without one (then the fallback tests still run)."""
    if not int4_kernel.available():
        if kernels.compiler_present():
            pytest.fail("the kernel library did not build although a compiler is present: "
                        f"{int4_kernel.unavailable_reason()}")
        pytest.skip(f"no C++ compiler here: {int4_kernel.unavailable_reason()}")
    yield
    int4_kernel.set_isa("avx512")
