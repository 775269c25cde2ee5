"""Decode's matmul alone: bytes of weight read per second by one GEMV (one row of x, as a decode step), for int4 and
int8 weights too large for any cache, at each activation mode: fp32 x multiplied as is (the baseline, the kernels
before integer decode), fp32 x rounded to int16 (the int4 default on AVX512-VNNI) and int8 x (int4-a8), with a
plain read of the same bytes as the memory's own rate. Alternating rounds in one process, best of each. Writes
bench/results/gemv_bandwidth.json (gemv_bandwidth_avx2.json where the kernels run their AVX2 path).
Usage: .venv/bin/python bench/gemv_bandwidth.py [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._results import isa_suffix, kernel_bench_args, rate_rows, write_result  # noqa: E402

N, K = 16384, 8192  # 84 MB of int4, 134 MB of int8: far past the last-level cache


def main() -> None:
    args = kernel_bench_args(__doc__)
    import torch

    from playground.engine.fast import int4_kernel
    from playground.engine.fast.quant import QLinear

    w = torch.randn(N, K) * 0.05
    x = torch.randn(1, K)
    rows = {}
    for fmt in ("int4", "int8"):
        exact, reduced = QLinear(w, fmt), QLinear(w, fmt + "-a8")
        nbytes = exact._w.nbytes if fmt == "int4" else exact._w.qweight.nbytes + exact._w.scales.nbytes
        payload = torch.ones(nbytes // 8, dtype=torch.int64)  # the same bytes, summed as words
        modes = {"fp32 x (baseline)": (exact, True), "fp32 x as int16": (exact, False), "int8 x": (reduced, False)}
        best = {name: float("inf") for name in [*modes, "plain read"]}
        for _ in range(args.rounds):
            for name, (lin, exact_fp32) in modes.items():
                with torch.inference_mode(), int4_kernel.exact_fp32(exact_fp32):
                    lin(x)
                    start = time.perf_counter()
                    lin(x)
                    best[name] = min(best[name], time.perf_counter() - start)
            start = time.perf_counter()
            payload.sum()  # every byte read once
            best["plain read"] = min(best["plain read"], time.perf_counter() - start)
        rows[fmt] = rate_rows(f"{fmt} weights [{N}, {K}] ({nbytes / 1e6:.0f} MB), {args.threads} threads:", best,
                              nbytes, "GB/s", "fp32 x (baseline)")
    print(f"int16 x on this CPU: {int4_kernel.fp32_x_bits() == 16} ({int4_kernel.build_info().get('isa')})")
    write_result(f"gemv_bandwidth{isa_suffix()}", {"shape": [N, K], "threads": args.threads, "rounds": args.rounds,
                                    "isa": int4_kernel.build_info().get("isa"), "rows": rows})


if __name__ == "__main__":
    main()
