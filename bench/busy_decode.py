"""Decode speed with one competing busy process on the same cores, against the same engine on a quiet machine.

    .venv/bin/python bench/busy_decode.py [--tokens 96] [--rounds 2]

A desktop app shares its cores with a browser or a build. OpenMP threads that spin-wait at every barrier lose
their time slices to the competitor and the whole decode waits for them. Playground shortens the spin before torch
loads and, while decoding, runs on the cores other programs leave free (``playground/threads.py``). Each
configuration runs in its own process (OpenMP reads its environment once): the product's default, the same spin
without the thread governor, the earlier default (spin 300, no governor) and libgomp's stock spinning
(GOMP_SPINCOUNT=300000, no governor), each quiet and with ``python -c 'while 1: pass'`` running. Rounds alternate.
The embedded SmolLM2-135M at int4 on the fused path, greedy, EOS ignored. Goal (issue 17): busy ≥ 40% of quiet.
Writes bench/results/busy_decode[_ISA].json (one file per kernel ISA).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
PROMPT = "The history of the printing press begins in"
CONFIGS = {"playground default": {},
           "no governor": {"PLAYGROUND_THREAD_GOVERNOR": "0"},
           "earlier default: spin 300, no governor": {"GOMP_SPINCOUNT": "300", "PLAYGROUND_THREAD_GOVERNOR": "0"},
           "stock libgomp spinning, no governor": {"GOMP_SPINCOUNT": "300000", "PLAYGROUND_THREAD_GOVERNOR": "0"}}


def child(tokens: int) -> None:
    sys.path.insert(0, str(ROOT))
    from playground.domain.text import GenerationRequest
    from playground.engine.generate import generate
    from playground.engine.text import load_text_model
    from playground.models import embedded

    tm = load_text_model(embedded.EMBEDDED_ID, embedded.ensure_embedded(), device="cpu", precision="int4")
    tm.eos_ids = frozenset()
    req = GenerationRequest(prompt=PROMPT, temperature=0, max_new_tokens=tokens)
    generate(tm, GenerationRequest(prompt=PROMPT, temperature=0, max_new_tokens=8))  # warm up
    print("READY", flush=True)
    sys.stdin.readline()  # the parent starts (or not) the competitor, then says go
    rate = generate(tm, req).first.timings.tokens_per_s
    print(json.dumps({"tokens_per_s": rate, "path": tm.describe(),
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}), flush=True)


def measure(extra_env: dict[str, str], busy: bool, tokens: int) -> dict:
    own = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "PLAYGROUND_THREAD_GOVERNOR")
    env = {k: v for k, v in os.environ.items() if k not in own} | extra_env
    proc = subprocess.Popen([sys.executable, __file__, "--child", "--tokens", str(tokens)], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    while proc.stdout.readline().strip() != "READY":
        if proc.poll() is not None:
            raise SystemExit("the decode process failed")
    hog = subprocess.Popen([sys.executable, "-c", "while 1: pass"]) if busy else None
    try:
        time.sleep(0.5 if busy else 0)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out = json.loads(proc.stdout.readline())
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
        proc.wait()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.tokens)
    rates: dict[str, dict[str, list[float]]] = {name: {"quiet": [], "busy": []} for name in CONFIGS}
    path = ""
    for _ in range(args.rounds):
        for name, env in CONFIGS.items():
            for state in ("quiet", "busy"):
                out = measure(env, state == "busy", args.tokens)
                rates[name][state].append(out["tokens_per_s"])
                path = out["path"]
                print(f"{name:34} {state:5} {out['tokens_per_s']:7.1f} tok/s", flush=True)
    rows = []
    for name in CONFIGS:
        quiet, busy = (statistics.median(rates[name][s]) for s in ("quiet", "busy"))
        rows.append({"config": name, "env": CONFIGS[name], "quiet_tok_s": round(quiet, 2),
                     "busy_tok_s": round(busy, 2), "busy_over_quiet": round(busy / quiet, 3),
                     "runs": rates[name]})
    print("\n| config | quiet tok/s | busy tok/s | busy / quiet |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['quiet_tok_s']:.1f} | {r['busy_tok_s']:.1f} | {r['busy_over_quiet']:.0%} |")
    import torch

    result = {"bench": "busy_decode", "command": " ".join([Path(sys.executable).name, *sys.argv]),
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "python": platform.python_version(), "torch": torch.__version__},
              "model": "embedded SmolLM2-135M-Instruct", "engine": path, "new_tokens": args.tokens,
              "competitor": "python -c 'while 1: pass'", "goal": "busy >= 0.40 x quiet", "rows": rows,
              "load_average_at_end": os.getloadavg(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    sys.path.insert(0, str(ROOT))
    from bench._results import isa_suffix

    results = RESULTS_DIR / f"busy_decode{isa_suffix()}.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {results}")


if __name__ == "__main__":
    main()
