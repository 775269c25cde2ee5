"""What bounds issue 17's last missed goals on this machine, each floor measured against llama.cpp in the same run.

    .venv/bin/python bench/floors.py                     # every model below that exists
    .venv/bin/python bench/floors.py --rss smollm2 --load llama3.2-1b-q5_k_m --rounds 2

Peak RSS (goal: ours <= 1.25x llama.cpp's). A floor no engine built on torch goes under: the RSS of a fresh
process once it has imported what a load imports (torch; transformers' config and tokenizer modules; our kernel
library), plus the bytes of the model's weights in our formats (what a decode step reads: layers and head;
``Weights.nbytes``). Neither can be freed while the model runs; the tokenizer, KV cache and activations come on
top. Against llama.cpp's peak on the same file after the same runs as bench/vs_llamacpp.py's (a 32-token prompt
and 64 tokens, then a 512-token prompt).

First load (goal: ours <= 2x llama.cpp's). llama.cpp maps a Q5_K file and reads nothing at load; a load that
writes the weights in another layout must first get that much fresh memory from the system. The floor: the time
a fresh process takes to get the repacked weights' bytes (one anonymous map, populated at once: cheaper than the
page faults of writing it; the fastest of the rounds), against llama.cpp's load of the file (bench/gguf_load.py's
worker, page cache warm; medians). A copying load also reads the file and writes its layout: more than this.
Beside it, the way round it and its price: our load with the Q5_K blocks read where they lie
(``PLAYGROUND_Q5K_IN_PLACE=1``, no copy) and decode tok/s both ways (bench/engine_worker.py, alternating).
Random-weight models of real shapes: speed and memory do not depend on the weight values. Writes
bench/results/floors.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.vs_llamacpp import CACHE, DECODE_TOKENS, GGUFS, Worker, sources, text_ids  # noqa: E402

RSS_MODELS = ("smollm2", "gemma3-270m", "qwen2.5-0.5b-q4_k_m")
LOAD_MODELS = {"llama3.2-1b-q5_k_m": "llama-3.2-1b-Q5_K_M.gguf", "qwen2.5-3b-q5_k_m": "qwen2.5-3b-Q5_K_M.gguf"}
RSS_GOAL, LOAD_GOAL = 1.25, 2.0

_TORCH_RSS = ("import torch\nfrom bench.memory import peak_rss_bytes\nprint(peak_rss_bytes())")
_TOKENIZER = r"""
import ctypes, gc, sys
from pathlib import Path
from bench.floors import _imports
def rss():  # what the process holds once the garbage is collected and returned to the system
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS:")).split()[1]) * 1024
_imports()
path = Path(sys.argv[1])
before = rss()
if path.suffix == ".gguf":
    from playground.engine.fast.gguf_split import open_gguf
    from playground.engine.fast.gguf_tokenizer import build_tokenizer
    meta = open_gguf(path).metadata
    tok = build_tokenizer(meta)
    for key in ("tokens", "scores", "token_type", "merges"):  # in the tokenizer now: not counted twice
        meta.pop(f"tokenizer.ggml.{key}", None)
else:
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(path))
print(rss() - before)
"""
_FRESH_MEMORY = r"""
import mmap, sys, time
n = int(sys.argv[1])
t = time.perf_counter()
m = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
print(time.perf_counter() - t)
"""


def _python(code: str, *args: str) -> str:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, check=True)
    return out.stdout.strip().splitlines()[-1]


def _imports() -> None:
    """What a load imports before it reads the model (as bench/gguf_load.py's worker has them)."""
    import torch  # noqa: F401

    from playground.engine import light_config
    from playground.engine.fast import kernels

    light_config.prepare()
    from transformers import AutoConfig, PreTrainedTokenizerFast  # noqa: F401

    kernels.available()


def _worker(source: str) -> None:
    """In a fresh process: RSS after a load's imports, the model's weight bytes, peak RSS after the runs (the
    prompts' ids on stdin, tokenized by the parent: a second tokenizer here would count in the peak)."""
    import torch

    from bench.memory import peak_rss_bytes

    _imports()
    from playground.engine.gguf_text import load_gguf_text_model
    from playground.engine.text import load_text_model

    imports = peak_rss_bytes()
    path = Path(source)
    load = load_gguf_text_model if path.suffix == ".gguf" else load_text_model
    tm = load(path.name, path, device="cpu", precision="int4")
    fast = tm.fast
    prompts = json.loads(sys.stdin.readline())
    with torch.inference_mode():
        for ids, n in ((prompts["short"], DECODE_TOKENS), (prompts["long"], 1)):
            token = int(fast.prefill(0, ids, reuse=False).argmax())
            for _ in range(n - 1):
                token = int(fast.step([token], [0])[0].argmax())
    print(json.dumps({"imports_rss": imports, "weights": fast.quantized_bytes(), "peak_rss": peak_rss_bytes(),
                      "engine": tm.describe()}), flush=True)


def rss_row(name: str, llama: str, threads: int) -> dict:
    folder, gguf, what = sources(name)
    short, long = text_ids(folder, 32), text_ids(folder, 512)
    worker = [sys.executable, str(Path(__file__).resolve()), "--worker", str(folder)]
    prompts = json.dumps({"short": short, "long": long}) + "\n"
    if folder.suffix != ".gguf":  # a first load quantizes and stores: the measured process loads int4 directly
        subprocess.run(worker, input=prompts, capture_output=True, text=True, cwd=ROOT, check=True)
    out = subprocess.run(worker, input=prompts, capture_output=True, text=True, cwd=ROOT, check=True)
    ours = json.loads(out.stdout.strip().splitlines()[-1])
    w = Worker([llama, str(ROOT / "bench" / "llama_cpp_worker.py"), str(gguf), str(threads), "2048"])
    w.run(short, DECODE_TOKENS)
    llama_peak = w.run(long, 1)["rss_bytes"]
    w.proc.kill()
    torch_rss = int(_python(_TORCH_RSS))
    tokenizer = int(_python(_TOKENIZER, str(folder)))
    mb = 2 ** 20
    floor = ours["imports_rss"] + ours["weights"]
    row = {"what": what, "torch_import_mb": round(torch_rss / mb, 1),
           "imports_mb": round(ours["imports_rss"] / mb, 1), "weights_mb": round(ours["weights"] / mb, 1),
           "floor_mb": round(floor / mb, 1), "tokenizer_mb": round(tokenizer / mb, 1),
           "floor_with_tokenizer_x_llama_cpp": round((floor + tokenizer) / llama_peak, 3),
           "ours_peak_mb": round(ours["peak_rss"] / mb, 1),
           "llama_cpp_peak_mb": round(llama_peak / mb, 1), "goal_mb": round(RSS_GOAL * llama_peak / mb, 1),
           "torch_import_x_llama_cpp": round(torch_rss / llama_peak, 3),
           "floor_x_llama_cpp": round(floor / llama_peak, 3),
           "ours_x_llama_cpp": round(ours["peak_rss"] / llama_peak, 3)}
    if row["floor_x_llama_cpp"] > RSS_GOAL:
        row["verdict"] = "out of reach with torch in the process: the floor alone exceeds the goal"
    elif row["floor_with_tokenizer_x_llama_cpp"] > RSS_GOAL:
        row["verdict"] = ("out of reach with torch and the tokenizers library in the process: the floor and the "
                          "tokenizer exceed the goal")
    else:
        left = round(row["goal_mb"] - row["floor_mb"] - row["tokenizer_mb"], 1)
        used = round(row["ours_peak_mb"] - row["floor_mb"] - row["tokenizer_mb"], 1)
        row["verdict"] = (f"the floor is under the goal; with the tokenizer, {left} MB are left for the KV cache, "
                          f"activations and code, where ours take {used} MB")
    return row


def _repacked_bytes(path: Path) -> int:
    from playground.engine.fast import gguf_repack
    from playground.engine.fast.gguf_model import load_gguf

    tensors = load_gguf(path, tokenizer=False, lazy=True).tensors
    return sum(tensors.repacked_nbytes(hf) for hf in tensors if tensors.source_type(hf) not in gguf_repack.FLOATS)


def _decode(path: Path, in_place: bool) -> float:
    env = dict(os.environ, PLAYGROUND_Q5K_IN_PLACE="1" if in_place else "0")
    w = Worker([sys.executable, str(ROOT / "bench" / "engine_worker.py"), str(path), "int4"], env=env)
    ids = text_ids(path, 32)
    w.run(ids, 8)
    rate = w.run(ids, 2 * DECODE_TOKENS)["tokens_per_s"]
    w.proc.kill()
    return rate


def load_row(name: str, llama: str, threads: int, rounds: int) -> dict:
    from bench.gguf_load import _LLAMA, PROMPT, _run

    path = CACHE / "models" / LOAD_MODELS[name]
    path.read_bytes()  # into the page cache, for every side
    need = _repacked_bytes(path)
    ours_cmd = [sys.executable, str(ROOT / "bench" / "gguf_load.py"), "--worker", str(path), str(threads)]
    runs: dict[str, list[float]] = {k: [] for k in ("fresh", "llama", "ours", "in_place", "dec", "dec_in_place")}
    for _ in range(rounds):
        runs["llama"].append(_run([llama, "-c", _LLAMA, str(path), str(threads), str(ROOT / "bench"),
                                   PROMPT])["load_s"])
        runs["fresh"].append(float(_python(_FRESH_MEMORY, str(need))))
        runs["ours"].append(_run(ours_cmd)["load_s"])
        os.environ["PLAYGROUND_Q5K_IN_PLACE"] = "1"
        try:
            runs["in_place"].append(_run(ours_cmd)["load_s"])
        finally:
            del os.environ["PLAYGROUND_Q5K_IN_PLACE"]
        runs["dec"].append(_decode(path, False))
        runs["dec_in_place"].append(_decode(path, True))
    med = {k: statistics.median(v) for k, v in runs.items()}
    med["fresh"] = min(runs["fresh"])  # the floor at its lowest: a first run can pay the host's own page faults
    row = {"file": path.stem, "file_mb": round(path.stat().st_size / 1e6, 1), "repacked_mb": round(need / 1e6, 1),
           "fresh_memory_s": round(med["fresh"], 3), "llama_cpp_load_s": round(med["llama"], 3),
           "ours_load_s": round(med["ours"], 3), "ours_in_place_load_s": round(med["in_place"], 3),
           "fresh_memory_x_llama_cpp": round(med["fresh"] / med["llama"], 2),
           "ours_x_llama_cpp": round(med["ours"] / med["llama"], 2),
           "ours_in_place_x_llama_cpp": round(med["in_place"] / med["llama"], 2),
           "decode_tok_s": round(med["dec"], 1), "decode_in_place_tok_s": round(med["dec_in_place"], 1),
           "runs": runs}
    if row["fresh_memory_x_llama_cpp"] > LOAD_GOAL:
        row["verdict"] = ("a copying load cannot meet the goal here: fresh memory for the copy alone takes longer than "
                          "2x llama.cpp's load")
    else:
        row["verdict"] = (f"fresh memory for the copy takes {row['fresh_memory_x_llama_cpp']}x llama.cpp's load, "
                          f"reading the file and writing the copy the rest of our {row['ours_x_llama_cpp']}x; without "
                          f"the copy {row['ours_in_place_x_llama_cpp']}x, decoding at {row['decode_in_place_tok_s']} "
                          f"against {row['decode_tok_s']} tok/s")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rss", default=",".join(RSS_MODELS), help="models for the RSS floor (vs_llamacpp names)")
    ap.add_argument("--load", default=",".join(LOAD_MODELS), help="Q5_K_M files for the load floor")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 2))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(args.worker)
        return
    from bench._results import write_result
    from bench.make_gguf_models import SPEED_NOTE, llama_python

    llama = llama_python()
    print(SPEED_NOTE)
    result: dict = {"threads": args.threads, "rounds": args.rounds, "note": SPEED_NOTE,
                    "goals": {"peak_rss": f"<= {RSS_GOAL}x llama.cpp", "first_load": f"<= {LOAD_GOAL}x llama.cpp"},
                    "rss": {}, "load": {}}
    for name in filter(None, args.rss.split(",")):
        if name != "smollm2" and not (sources(name)[0]).is_file():
            print(f"skipped {name}: make it with bench/make_gguf_models.py ({GGUFS[name]})")
            continue
        row = result["rss"][name] = rss_row(name, llama, args.threads)
        print(f"peak RSS {name}: torch alone {row['torch_import_mb']} MB, imports {row['imports_mb']} + weights "
              f"{row['weights_mb']} = floor {row['floor_mb']} MB = {row['floor_x_llama_cpp']}x llama.cpp's "
              f"{row['llama_cpp_peak_mb']} (goal {RSS_GOAL}x = {row['goal_mb']}); the tokenizer holds "
              f"{row['tokenizer_mb']} MB more; ours {row['ours_x_llama_cpp']}x: "
              f"{row['verdict']}", flush=True)
    for name in filter(None, args.load.split(",")):
        row = result["load"][name] = load_row(name, llama, args.threads, args.rounds)
        print(f"first load {name}: fresh memory for {row['repacked_mb']} MB {row['fresh_memory_s']} s = "
              f"{row['fresh_memory_x_llama_cpp']}x llama.cpp's load {row['llama_cpp_load_s']} s; ours "
              f"{row['ours_x_llama_cpp']}x, in place {row['ours_in_place_x_llama_cpp']}x; decode "
              f"{row['decode_tok_s']} vs {row['decode_in_place_tok_s']} tok/s in place", flush=True)
    print(f"wrote {write_result('floors', result).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
