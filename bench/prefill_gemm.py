"""Prefill's matmul alone: one prompt chunk (512 rows of x) times a quantized weight of a real model's shape, in
GFLOP/s, for the modes the kernels can take: the fp32 GEMM on dequantized tiles (``exact_fp32``; the baseline, what
prefill ran before bf16), the default reduced one (bf16 through oneDNN where the CPU has AVX512-BF16; on the AVX2
path int4 x int8 in integers, csrc/gemm_avx2.cpp), the int8 mode's (-a8 precisions; int8 x on the AVX2 path), and
torch's own fp32 and bf16 matmuls of the same product on weights already dequantized (what a float model would
run). Alternating rounds in one process, best of each. Results: bench/results/prefill_gemm[_ISA].json.
Usage: .venv/bin/python bench/prefill_gemm.py [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._results import isa_suffix, kernel_bench_args, rate_rows, write_result  # noqa: E402

T = 512  # the prefill chunk
SHAPES = {"llama3.2-1b gate+up": (16384, 2048), "llama3.2-1b down": (2048, 8192), "qwen2.5-0.5b qkv": (1152, 896)}


def main() -> None:
    args = kernel_bench_args(__doc__)

    from playground.engine.fast import int4_kernel

    rows = {}
    for shape_name, (n, k) in SHAPES.items():
        best = _best_times(n, k, args.rounds)
        rows[shape_name] = rate_rows(f"{shape_name}: x [{T}, {k}] . w [{n}, {k}]^T, {args.threads} threads:", best,
                                     2 * T * n * k, "GFLOP/s", "int4 tiles, fp32 GEMM (baseline)")
    with int4_kernel.exact_fp32(False):
        gemm = int4_kernel.prefill_gemm()
    print(f"prefill's default GEMM on this CPU: {gemm} ({int4_kernel.build_info().get('isa')})")
    write_result(f"prefill_gemm{isa_suffix()}", {"rows_of_x": T, "threads": args.threads, "rounds": args.rounds,
                                                 "isa": int4_kernel.build_info().get("isa"), "bf16": gemm == "bf16",
                                                 "default_gemm": gemm, "shapes": rows})


def _best_times(n: int, k: int, rounds: int) -> dict[str, float]:
    import torch

    from playground.engine.fast import int4_kernel

    w = int4_kernel.quantize(torch.randn(n, k) * 0.05)
    x = torch.randn(T, k)
    dense = int4_kernel.dequantize(w)
    dense16, x16 = dense.bfloat16(), x.bfloat16()
    modes = {
        "int4 tiles, fp32 GEMM (baseline)": (lambda: int4_kernel.matmul(x, w, prefill=True), True),
        "int4, default GEMM (bf16 / int8 x)": (lambda: int4_kernel.matmul(x, w, prefill=True), False),
        "int4, int8 mode's GEMM (-a8)": (lambda: int4_kernel.matmul(x, w, int8_activations=True, prefill=True),
                                         False),
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
