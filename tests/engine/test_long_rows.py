"""Decode's row kernels where x nearly fills L1 (csrc/row_pass.h): one or two rows of x past 30 KB (a 7-8B model's
down projection, or two Compare columns at K 8192) walk a block of weight rows a chunk of x at a time, each row's
sums kept between chunks in the order a row at a time adds them: every row of x gets the same result to the bit
whichever way its pass ran, and the right one."""

from __future__ import annotations

import pytest
import torch

from playground.engine.fast import gguf_repack, kernels
from playground.engine.fast.quant import QLinear
from tests.engine.int4_reference import rel_err
from tests.gguf_files import random_blocks

QUANTS = ["Q4_0", "Q4_K", "Q5_0", "Q5_K", "Q6_K", "Q8_0"]  # int4 implied / K-quant, int5 both, int6, int8
# against fp64 with x as it is: x rounded to int16 (2-3e-5 measured) or int8 (4-9e-3); a chunk lost: ~1
TOLERANCE = {"int4": 2e-4, "int4-a8": 2e-2}


@pytest.fixture
def vnni512() -> None:
    if not kernels.available() or not kernels.vnni512():
        pytest.skip("the chunked passes are the AVX512-VNNI decode loops'")
    kernels.set_isa("avx512")


def _layer(quant: str, n: int, k: int, precision: str) -> QLinear:
    w = gguf_repack.repack(random_blocks(n, k, quant, seed=k + len(quant)).reshape(-1), quant, (n, k))
    return QLinear.wrap(w, precision)


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("precision", ["int4", "int4-a8"])
def test_two_rows_of_x_in_chunks_give_each_rows_own_result_to_the_bit(vnni512, quant, precision):
    """K 7680: one row of x (8-24 KB as the kernels read it) runs a row at a time, two rows of int16 x (33-48 KB)
    in chunks; 70 weight rows: blocks of 32 split over two threads, a short last one."""
    k = 7680
    lin = _layer(quant, 70, k, precision)
    x = torch.randn(2, k, generator=torch.Generator().manual_seed(3))
    both = lin(x)
    for i in range(2):
        assert torch.equal(both[i:i + 1], lin(x[i:i + 1])), (quant, precision, i)
    dense = lin.rows(torch.arange(70)).double()
    assert rel_err(both, x.double() @ dense.T) < TOLERANCE[precision]


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("precision", ["int4", "int4-a8"])
def test_a_row_of_x_past_l1_gives_the_same_result_in_any_chunk_length(vnni512, quant, precision):
    """K 16384: one row of int16 x (35-51 KB as the kernels read it) and two run in chunks of different lengths;
    int8 x: one row (18-26 KB) a row at a time, two in chunks."""
    k = 16384
    lin = _layer(quant, 45, k, precision)
    x = torch.randn(2, k, generator=torch.Generator().manual_seed(4))
    one = lin(x[:1])
    assert torch.equal(lin(x)[:1], one), quant
    dense = lin.rows(torch.arange(45)).double()
    assert rel_err(one, x[:1].double() @ dense.T) < TOLERANCE[precision]
