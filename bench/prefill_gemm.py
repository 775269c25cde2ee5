"""Prefill's matmul alone: one prompt chunk (512 rows of x) times a quantized weight of a real model's shape, in
GFLOP/s, for the modes the kernels can take: the fp32 GEMM on dequantized tiles (``exact_fp32``; the baseline, what
prefill ran before bf16), the bf16 GEMM on them (oneDNN, the default where the CPU has AVX512-BF16), and torch's
own fp32 and bf16 matmuls of the same product on weights already dequantized (what a float model would run, and
the bf16 GEMM's ceiling here). Alternating rounds in one process, best of each.
Usage: .venv/bin/python bench/prefill_gemm.py [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._results import write_result  # noqa: E402

T = 512  # the prefill chunk
SHAPES = {"llama3.2-1b gate+up": (16384, 2048), "llama3.2-1b down": (2048, 8192), "qwen2.5-0.5b qkv": (1152, 896)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    from playground.engine.fast import int4_kernel

    torch.set_num_threads(args.threads)
    if not int4_kernel.available():
        raise SystemExit(f"the kernel library is not built: {int4_kernel.unavailable_reason()}")
    rows = {}
    for shape_name, (n, k) in SHAPES.items():
        best = _best_times(n, k, args.rounds)
        flop = 2 * T * n * k
        base = best["int4 tiles, fp32 GEMM (baseline)"]
        rows[shape_name] = {name: {"gflop_s": round(flop / s / 1e9, 1), "ms": round(s * 1e3, 2),
                                   "x_baseline": round(base / s, 2)} for name, s in best.items()}
        print(f"{shape_name}: x [{T}, {k}] . w [{n}, {k}]^T, {args.threads} threads:")
        for name, r in rows[shape_name].items():
            print(f"  {name:34s} {r['gflop_s']:7.1f} GFLOP/s  {r['ms']:8.2f} ms  {r['x_baseline']:.2f}x baseline")
    with int4_kernel.exact_fp32(False):
        in_bf16 = int4_kernel.gemm_bf16()
    print(f"bf16 GEMM on this CPU: {in_bf16} ({int4_kernel.build_info().get('isa')})")
    write_result("prefill_gemm", {"rows_of_x": T, "threads": args.threads, "rounds": args.rounds,
                                  "isa": int4_kernel.build_info().get("isa"), "bf16": in_bf16, "shapes": rows})


def _best_times(n: int, k: int, rounds: int) -> dict[str, float]:
    import torch

    from playground.engine.fast import int4_kernel

    w = int4_kernel.quantize(torch.randn(n, k) * 0.05)
    x = torch.randn(T, k)
    dense = int4_kernel.dequantize(w)
    dense16, x16 = dense.bfloat16(), x.bfloat16()
    modes = {
        "int4 tiles, fp32 GEMM (baseline)": (lambda: int4_kernel.matmul(x, w, prefill=True), True),
        "int4 tiles, bf16 GEMM (default)": (lambda: int4_kernel.matmul(x, w, prefill=True), False),
        "dense fp32 matmul": (lambda: x @ dense.T, False),
        "dense bf16 matmul": (lambda: x16 @ dense16.T, False),
    }
    best = dict.fromkeys(modes, float("inf"))
    for _ in range(rounds):
        for name, (run, exact) in modes.items():
            with torch.inference_mode(), int4_kernel.exact_fp32(exact):
                run()
                start = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - start)
    return best


if __name__ == "__main__":
    main()
