"""First load of a GGUF file: our loader (straight into the fast runner) vs llama.cpp's, on the same files, in
alternating rounds, each load in a fresh process (after the libraries are imported: both sides time the load).

    .venv/bin/python bench/gguf_load.py                     # every benchmark GGUF (bench/make_gguf_models.py)
    .venv/bin/python bench/gguf_load.py --models qwen2.5-0.5b-Q4_0 smollm2-135m-Q4_1 --rounds 3

Per file and engine: ``load_s`` (ours: ``load_gguf_text_model``: metadata, tokenizer, config, every tensor repacked
into the runner's formats, with transformers' config / tokenizer modules and our engine's modules and compiled
library imported before the clock, as a running app has them; llama.cpp: ``Llama(...)`` with its default memory
map, which reads weights lazily), then ``first_token_s`` (a 6-token prompt to its first generated token: where
llama.cpp's page faults land), peak RSS after the load and after the first token. The file is in the page cache
for both (a first untimed read warms it).
Random-weight models of real shapes: speed does not depend on the weight values. Goal (issue 17): our load
<= 2x llama.cpp's. Writes bench/results/gguf_load.json and prints a Markdown table.
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
PROMPT = "The capital of France is"


def _files() -> dict[str, Path]:
    sys.path.insert(0, str(ROOT))
    from bench.make_gguf_models import model_files

    files = {"smollm2-135m-Q4_1": _embedded_gguf()}
    files.update(model_files())
    return files


def _embedded_gguf() -> Path:
    from playground.models import embedded

    return embedded.gguf_file()


def _ours(path: str, threads: int) -> None:
    """Worker: one load in this fresh process, one JSON line out."""
    started = time.perf_counter()
    import torch

    torch.set_num_threads(threads)
    # Library code imported before the clock starts, as llama_cpp's is on the other side: transformers' config
    # and tokenizer modules, which a running app has imported already when a new GGUF is added (the way the app
    # imports them: light_config first). Reported as import_s.
    from playground.engine import light_config

    light_config.prepare()
    from transformers import AutoConfig, PreTrainedTokenizerFast  # noqa: F401

    AutoConfig.for_model("llama")

    from bench.memory import peak_rss_bytes
    from playground.domain.text import GenerationRequest

    # Our engine's own modules and compiled library too, as `import llama_cpp` loads llama.cpp's: imported inside
    # the clock they were compiled from source on every run here (this machine sets PYTHONDONTWRITEBYTECODE;
    # with the library's load, ~0.07 s of SmolLM2's 0.22 s), which an installed app, bytecode cached, never does.
    from playground.engine.fast import gguf_model, kernels, runner  # noqa: F401
    from playground.engine.generate import generate
    from playground.engine.gguf_text import load_gguf_text_model

    kernels.available()

    import_s = time.perf_counter() - started
    t0 = time.perf_counter()
    tm = load_gguf_text_model("bench", Path(path), device="cpu")
    load_s = time.perf_counter() - t0
    rss_load = peak_rss_bytes()
    t1 = time.perf_counter()
    generate(tm, GenerationRequest(prompt=PROMPT, max_new_tokens=1, temperature=0.0, seed=0))
    first = time.perf_counter() - t1
    print(json.dumps({"import_s": import_s, "load_s": load_s, "first_token_s": first, "rss_after_load": rss_load,
                      "rss_after_first_token": peak_rss_bytes(), "path": tm.describe()}), flush=True)


_LLAMA = r"""
import json, sys, time
sys.path.insert(0, sys.argv[3])
started = time.perf_counter()
from llama_cpp import Llama
from memory import peak_rss_bytes
import_s = time.perf_counter() - started
t0 = time.perf_counter()
llm = Llama(model_path=sys.argv[1], n_ctx=2048, n_batch=512, n_threads=int(sys.argv[2]),
            n_threads_batch=int(sys.argv[2]), verbose=False)
load_s = time.perf_counter() - t0
rss_load = peak_rss_bytes()
t1 = time.perf_counter()
tokens = llm.tokenize(sys.argv[4].encode(), add_bos=True)
next(iter(llm.generate(tokens, temp=0.0, top_k=1, reset=True)))
first = time.perf_counter() - t1
print(json.dumps({"import_s": import_s, "load_s": load_s, "first_token_s": first, "rss_after_load": rss_load,
                  "rss_after_first_token": peak_rss_bytes()}), flush=True)
"""


def _run(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{cmd[:3]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", help="names (default: all that exist)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 2))
    ap.add_argument("--worker", nargs=2, metavar=("PATH", "THREADS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        sys.path.insert(0, str(ROOT))
        _ours(args.worker[0], int(args.worker[1]))
        return
    sys.path.insert(0, str(ROOT))
    from bench.make_gguf_models import SPEED_NOTE, llama_python

    files = _files()
    names = args.models or [n for n, p in files.items() if p.is_file()]
    missing = [n for n in names if n not in files or not files[n].is_file()]
    if missing:
        sys.exit(f"missing {missing}: make them with bench/make_gguf_models.py (names: {', '.join(files)})")
    llama = llama_python()
    ours_cmd = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    llama_cmd = [llama, "-c", _LLAMA]
    print(SPEED_NOTE)
    rows = []
    for name in names:
        path = files[name]
        path.read_bytes()  # into the page cache for both engines
        runs: dict[str, list[dict]] = {"ours": [], "llama_cpp": []}
        for r in range(args.rounds):
            order = ["ours", "llama_cpp"] if r % 2 == 0 else ["llama_cpp", "ours"]
            for engine in order:
                if engine == "ours":
                    runs["ours"].append(_run([*ours_cmd, str(path), str(args.threads)]))
                else:
                    runs["llama_cpp"].append(_run([*llama_cmd, str(path), str(args.threads),
                                                   str(ROOT / "bench"), PROMPT]))
        row = {"model": name, "file_mb": round(path.stat().st_size / 1e6, 1)}
        for engine, results in runs.items():
            for key in ("load_s", "first_token_s", "import_s"):
                row[f"{engine}_{key}"] = round(statistics.median(x[key] for x in results), 3)
            for key in ("rss_after_load", "rss_after_first_token"):
                row[f"{engine}_{key}_mb"] = round(max(x[key] for x in results) / 2**20, 1)
        row["ours_path"] = runs["ours"][0]["path"]
        row["load_ratio"] = round(row["ours_load_s"] / row["llama_cpp_load_s"], 2)
        row["load_plus_first_token_ratio"] = round(
            (row["ours_load_s"] + row["ours_first_token_s"])
            / (row["llama_cpp_load_s"] + row["llama_cpp_first_token_s"]), 2)
        row["rss_ratio"] = round(row["ours_rss_after_first_token_mb"] / row["llama_cpp_rss_after_first_token_mb"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| model | file MB | ours load s | llama.cpp load s | ratio | load + 1st token: ours / llama.cpp (ratio) "
          "| peak RSS MB ours / llama.cpp |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['file_mb']} | {r['ours_load_s']} | {r['llama_cpp_load_s']} | {r['load_ratio']}x "
              f"| {r['ours_load_s'] + r['ours_first_token_s']:.2f} / "
              f"{r['llama_cpp_load_s'] + r['llama_cpp_first_token_s']:.2f} ({r['load_plus_first_token_ratio']}x) "
              f"| {r['ours_rss_after_first_token_mb']} / {r['llama_cpp_rss_after_first_token_mb']} |")
    import torch

    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine()},
        "versions": {"torch": torch.__version__, "llama_cpp_python": Path(llama).parents[1].name},
        "command": "python bench/gguf_load.py " + " ".join(sys.argv[1:]),
        "threads": args.threads, "rounds": args.rounds, "note": SPEED_NOTE,
        "goal": "ours load_s <= 2x llama.cpp's load_s (issue 17)",
        "rows": rows,
    }
    from bench._results import isa_suffix

    results = ROOT / "bench" / "results" / f"gguf_load{isa_suffix()}.json"  # one file per kernel ISA
    if results.is_file():  # a run over some models keeps the other models' rows, in their order
        measured = {r["model"]: r for r in rows}
        kept = json.loads(results.read_text(encoding="utf-8")).get("rows", [])
        result["rows"] = [measured.pop(r["model"], r) for r in kept] + list(measured.values())
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {results.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
