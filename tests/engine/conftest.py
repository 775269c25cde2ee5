"""Fixtures shared by the engine tests."""

from __future__ import annotations

import pytest

from playground.engine.fast import int4_kernel


@pytest.fixture
def exact_fp32():
    """For checks against fp32 arithmetic to float rounding: the kernels multiply fp32 x as is (on AVX512-VNNI decode
    otherwise rounds it to int16) and prefill's GEMM runs in fp32 (bf16 on CPUs with AVX512-BF16 otherwise).
    test_families covers both reduced modes against this one."""
    with int4_kernel.exact_fp32():
        yield
