"""Time to the first token of a short prompt: ours against llama.cpp (llama-cpp-python) on the same GGUF files.

    .venv/bin/python bench/short_prompt.py [--models qwen2.5-3b-q4_k_m,llama3.2-1b-q5_k_m] [--rounds 5]

A prompt of a few tokens is what runs after a cached source (change the prompt, keep the source) and on a chat's
next turn. Per model and length (2, 6 and 12 tokens), each engine in its own worker process (bench/engine_worker.py,
bench/llama_cpp_worker.py) gets the same token ids, a different window of varied text each round (so llama.cpp's
prefix reuse never applies), in alternating rounds half a second apart (each run timed after the other engine's
threads have stopped spinning); the median time to the first token of each. Ratio: llama.cpp's time / ours (above
1: ours is faster). Random-weight models of real shapes (bench/make_gguf_models.py): speed does not depend on the
weight values. Writes bench/results/short_prompt.json (short_prompt_avx2.json on the AVX2 path).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.vs_llamacpp import Worker, sources, text_ids  # noqa: E402

LENGTHS = (2, 6, 12)


def bench_model(name: str, python: str, threads: int, rounds: int) -> dict:
    source, gguf, what = sources(name)
    engines = {"ours": Worker([sys.executable, str(ROOT / "bench" / "engine_worker.py"), str(source), "int4"]),
               "llama.cpp": Worker([python, str(ROOT / "bench" / "llama_cpp_worker.py"), str(gguf), str(threads),
                                    "2048"])}
    text = text_ids(source, 4096)
    windows = iter(range(0, len(text), 37))  # a fresh window per run: nothing shared with the run before
    for w in engines.values():
        w.run(text[:32], 2)  # warm-up
    row = {"what": what, "ours_engine": engines["ours"].ready.get("engine"), "lengths": {}}
    for n in LENGTHS:
        runs: dict[str, list[float]] = {key: [] for key in engines}
        for _ in range(rounds):
            for key, w in engines.items():
                at = next(windows)
                time.sleep(0.5)  # the other engine's threads, spinning after its run, would take these cores
                runs[key].append(w.run(text[at:at + n], 1)["ttft_s"])
        med = {key: statistics.median(r) for key, r in runs.items()}
        row["lengths"][str(n)] = {"ours_s": round(med["ours"], 4), "llama_cpp_s": round(med["llama.cpp"], 4),
                                  "ratio": round(med["llama.cpp"] / med["ours"], 3), "runs": runs}
        print(f"  {name}, {n} tokens: ours {med['ours'] * 1e3:.0f} ms, llama.cpp {med['llama.cpp'] * 1e3:.0f} ms "
              f"({med['llama.cpp'] / med['ours']:.2f}x)", flush=True)
    for w in engines.values():
        w.close()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="qwen2.5-0.5b-q4_k_m,llama3.2-1b-q4_k_m,llama3.2-1b-q5_k_m,qwen2.5-3b-q4_k_m")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    import torch

    from bench._results import isa_suffix, write_result
    from bench.decode_speed import llama_cpp_python

    python = llama_cpp_python("auto")
    if python is None:
        raise SystemExit("llama-cpp-python is not built: bash scripts/llama_cpp_env.sh")
    threads = torch.get_num_threads()
    models = {}
    for name in [m for m in args.models.split(",") if m]:
        print(f"{name}:", flush=True)
        models[name] = bench_model(name, python, threads, args.rounds)
    write_result(f"short_prompt{isa_suffix()}", {"threads": threads, "rounds": args.rounds, "lengths": LENGTHS,
                                                 "note": "random-weight models: speed does not depend on the weight "
                                                         "values",
                                                 "models": models})


if __name__ == "__main__":
    main()
