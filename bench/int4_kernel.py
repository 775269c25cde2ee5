"""Int4 GEMV microbenchmark on SmolLM2-135M's per-token matrices: stock torch int4 vs our kernel vs fp32 F.linear.

Per layer: qkv fused 576->960, o 576->576, gate+up fused 576->3072, down 1536->576; 30 layers of distinct random
weights (so they do not all sit in L2). Methods run in alternating rounds (stock, ours, fp32, stock, ...) so machine
noise hits all of them; prints medians of the per-token time, GB/s of weight bytes read and ratios vs stock.
Also prints the kernel's one-time build time (in a fresh temporary cache) and its load time from that cache in a new
process, and each method's max relative error vs an fp32 reference computed from the same int4 weights.

Usage: .venv/bin/python bench/int4_kernel.py [--rounds 15] [--tokens 5] [--t 1] [--threads N] [--no-build-timing]
On a busy machine compare --threads 1 runs: with 2 threads an OpenMP barrier waits whenever the other thread is
descheduled (several ms per call), for torch's own kernels as for ours.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

LAYERS = 30
SHAPES = [("qkv", 960, 576), ("o", 576, 576), ("gate_up", 3072, 576), ("down", 576, 1536)]
STOCK_INNER_K_TILES = 2

_LOAD_SNIPPET = """
import json, time
t0 = time.perf_counter()
from playground.engine.fast import int4_kernel as k
ok = k.available()
info = k.build_info()
info["available_s"] = time.perf_counter() - t0
print(json.dumps(info))
"""


def build_timing() -> None:
    """Build in a fresh cache (one-time cost), then load it from a new process (every later launch)."""
    with tempfile.TemporaryDirectory(prefix="int4-kernel-cache-") as cache:
        env = dict(os.environ, PLAYGROUND_KERNEL_CACHE=cache)
        for label in ("first launch (builds)", "second launch (cached)"):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", "import torch\n" + _LOAD_SNIPPET], env=env,
                                  capture_output=True, text=True, check=False)
            wall = time.perf_counter() - start
            line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
            print(f"  {label}: {line}  (process wall {wall:.1f} s incl. torch import)")


def stock_weight(q: torch.Tensor, scales: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The same int4 values in torch's layout: w = (q - 8) * scale + zero, scales_and_zeros [K/32, N, 2] bf16."""
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.to(torch.int32).contiguous(), STOCK_INNER_K_TILES)
    zeros = offsets + 8 * scales
    sz = torch.stack([scales.T, zeros.T], dim=-1).to(torch.bfloat16).contiguous()
    return packed, sz


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--tokens", type=int, default=5, help="tokens (full 30-layer passes) per timed round")
    ap.add_argument("--t", type=int, default=1, help="rows of x per call (1 = decode)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-build-timing", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from playground.engine.fast import int4_kernel as k

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, capability "
          f"{torch.backends.cpu.get_cpu_capability()}, T={args.t}")
    if not args.no_build_timing:
        print("kernel build / load:")
        build_timing()
    t0 = time.perf_counter()
    ok = k.available()
    print(f"kernel available in this process: {ok} ({k.unavailable_reason() or k.build_info()}) "
          f"[{time.perf_counter() - t0:.2f} s]")

    torch.manual_seed(0)
    xs = {kdim: torch.randn(args.t, kdim) for kdim in {s[2] for s in SHAPES}}
    xs_bf16 = {kdim: x.to(torch.bfloat16) for kdim, x in xs.items()}
    ours, stock, fp32 = [], [], []
    bytes_ours = bytes_stock = bytes_fp32 = 0
    err = {"stock": 0.0, "ours": 0.0, "ours int8": 0.0, "fallback": 0.0, "fallback int8": 0.0}
    for layer in range(LAYERS):
        for _name, n, kdim in SHAPES:
            w = torch.randn(n, kdim) * 0.05
            qw = k.quantize(w)
            q = torch.cat([qw.qweight.reshape(n, -1, 16) & 15, qw.qweight.reshape(n, -1, 16) >> 4], -1).reshape(n, kdim)
            packed, sz = stock_weight(q, qw.scales, qw.offsets)
            ours.append((kdim, qw))
            stock.append((kdim, packed, sz))
            fp32.append((kdim, w))
            bytes_ours += qw.nbytes
            bytes_stock += packed.numel() * packed.element_size() + sz.numel() * sz.element_size()
            bytes_fp32 += w.numel() * 4
            if layer == 0:  # errors vs the fp64 product with the same int4 weights
                x = xs[kdim]
                ref = (x.double() @ k.dequantize(qw).double().T)
                scale = ref.abs().max().item()
                err["ours"] = max(err["ours"], (k.matmul(x, qw).double() - ref).abs().max().item() / scale)
                got = k.matmul(x, qw, int8_activations=True).double()
                err["ours int8"] = max(err["ours int8"], (got - ref).abs().max().item() / scale)
                got = torch.ops.aten._weight_int4pack_mm_for_cpu(xs_bf16[kdim], packed, 32, sz).double()
                err["stock"] = max(err["stock"], (got - ref).abs().max().item() / scale)
                os.environ[k.ENV_ENABLE] = "0"
                err["fallback"] = max(err["fallback"], (k.matmul(x, qw).double() - ref).abs().max().item() / scale)
                got = k.matmul(x, qw, int8_activations=True).double()
                err["fallback int8"] = max(err["fallback int8"], (got - ref).abs().max().item() / scale)
                del os.environ[k.ENV_ENABLE]

    def run_stock() -> None:
        for kdim, packed, sz in stock:
            torch.ops.aten._weight_int4pack_mm_for_cpu(xs_bf16[kdim], packed, 32, sz)

    def run_ours() -> None:
        for kdim, qw in ours:
            k.matmul(xs[kdim], qw)

    def run_ours_int8() -> None:
        for kdim, qw in ours:
            k.matmul(xs[kdim], qw, int8_activations=True)

    def run_fp32() -> None:
        for kdim, w in fp32:
            F.linear(xs[kdim], w)

    methods = {"stock int4 (bf16 x)": (run_stock, bytes_stock), "ours int4 (fp32 x)": (run_ours, bytes_ours),
               "ours int4 (int8 x)": (run_ours_int8, bytes_ours), "fp32 F.linear": (run_fp32, bytes_fp32)}
    times: dict[str, list[float]] = {m: [] for m in methods}
    cpu: dict[str, list[float]] = {m: [] for m in methods}
    with torch.inference_mode():
        for fn, _ in methods.values():  # warm-up
            fn()
        for _ in range(args.rounds):
            for m, (fn, _) in methods.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(args.tokens):
                    fn()
                times[m].append((time.perf_counter() - start) / args.tokens)
                cpu[m].append((time.process_time() - start_cpu) / args.tokens)

    base = statistics.median(times["stock int4 (bf16 x)"])
    print(f"\nper token ({LAYERS} layers x {len(SHAPES)} matmuls, T={args.t}), median of {args.rounds} rounds "
          f"x {args.tokens} tokens:")
    print(f"{'method':22} {'ms/token':>9} {'min ms':>8} {'cpu ms':>7} {'MB/token':>9} {'GB/s':>6} "
          f"{'speedup vs stock':>17}")
    for m, (_, nbytes) in methods.items():
        med = statistics.median(times[m])
        print(f"{m:22} {med * 1e3:9.2f} {min(times[m]) * 1e3:8.2f} {statistics.median(cpu[m]) * 1e3:7.2f} "
              f"{nbytes / 1e6:9.1f} {nbytes / med / 1e9:6.1f} {base / med:16.2f}x")
    print("(ms/token: wall median; cpu ms: process CPU time per token, all threads, spin-waits included)")
    print("\nmax |error| / max |ref| vs fp64 x @ dequantize(w).T (layer 0, random x): "
          + ", ".join(f"{name} {value:.2e}" for name, value in err.items()))


if __name__ == "__main__":
    main()
