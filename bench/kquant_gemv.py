"""Decode's matmul on GGUF's Q4_K and Q5_K weights held with their own parameters (kquant.py: 6-bit scale and min
codes, d and dmin per 256 weights: 2.5 bytes per group of 32) against the same weights with an fp16 scale and offset
per group (4 bytes, what they were held in before; values rounded to fp16), one GEMV (a decode step's row of x) on a
weight too large for any cache, with x as int16 (the default) and as int8 (int4-a8), in alternating rounds in one
process, best of each. Writes bench/results/kquant_gemv.json (kquant_gemv_avx2.json where the kernels run their AVX2
path). Usage: .venv/bin/python bench/kquant_gemv.py [--rounds 7] [--threads 2]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._results import isa_suffix, kernel_bench_args, write_result  # noqa: E402

N, K = 16384, 8192  # 78-84 MB of Q4_K: far past the last-level cache
CALLS = 5  # per timing


def main() -> None:
    args = kernel_bench_args(__doc__, rounds=7)
    import torch

    from playground.engine.fast import gguf_repack, int4_kernel, int5_kernel
    from tests.gguf_files import random_blocks

    x = torch.randn(1, K)
    rows = {}
    for quant, fmt in (("Q4_K", int4_kernel), ("Q5_K", int5_kernel)):
        kq = gguf_repack.repack(random_blocks(N, K, quant, seed=1).reshape(-1), quant, (N, K))
        if quant == "Q5_K" and not isinstance(kq, int5_kernel.Int5Weight):
            print(f"{quant}: held as int8 here (no int5 kernel on this path); skipped")
            continue
        cls = type(kq)
        halves = cls(N, K, kq.qweight, kq.scale_values().half().contiguous(), kq.offset_values().half().contiguous())
        weights = {"fp16 scales and offsets": halves, "K-quant parameters": kq}
        best = {(name, a8): float("inf") for name in weights for a8 in (False, True)}
        for _ in range(args.rounds):
            for (name, a8) in best:
                w = weights[name]
                fmt.matmul(x, w, int8_activations=a8)
                start = time.perf_counter()
                for _ in range(CALLS):
                    fmt.matmul(x, w, int8_activations=a8)
                best[name, a8] = min(best[name, a8], (time.perf_counter() - start) / CALLS)
        print(f"{quant} [{N}, {K}] ({args.threads} threads), best of {args.rounds} x {CALLS} calls:")
        out = {}
        for a8 in (False, True):
            mode = "int8 x" if a8 else "int16 x"
            base = best["fp16 scales and offsets", a8]
            for name, w in weights.items():
                s = best[name, a8]
                out[f"{name}, {mode}"] = {"ms": round(s * 1e3, 3), "mb": round(w.nbytes / 1e6, 1),
                                          "gb_per_s": round(w.nbytes / s / 1e9, 2), "x_fp16": round(base / s, 2)}
                print(f"  {mode:7s} {name:24s} {s * 1e3:6.2f} ms  {w.nbytes / 1e6:5.1f} MB  "
                      f"{w.nbytes / s / 1e9:5.1f} GB/s  {base / s:.2f}x fp16 parameters")
        rows[quant] = out
    write_result(f"kquant_gemv{isa_suffix()}", {"shape": [N, K], "threads": args.threads, "rounds": args.rounds,
                                                 "isa": int4_kernel.build_info().get("isa"), "rows": rows})


if __name__ == "__main__":
    main()
