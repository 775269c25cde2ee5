"""Sheet fill speed: 50 empty cells filled batched with a shared prefix vs one by one, on one loaded model.

Every side runs on the same TextModel, so on the same engine path and precision (printed, e.g. "int4 · fused"):
- one-by-one, no reuse: the engine's ``generate`` on each cell's whole prompt (greedy, stop at newline), its cache
  emptied before each cell, so the example rows are read every time (the naive baseline);
- one-by-one, prefix reuse: the same, but the cache keeps the example rows between cells (what ``generate`` does
  on the fast path when consecutive prompts share a prefix);
- filler, batch 1: the examples prefilled once, one cell decoding at a time;
- filler, batched: the examples prefilled once, ``--batch`` cells decoding together (one runner step per token).
Runs alternate so machine noise hits all; prints medians, ratios against the naive baseline, and whether the
answers agree. Writes bench/results/sheet_fill.json.
Usage: .venv/bin/python bench/sheet_fill.py [--rounds 2] [--batch 8] [--model ID] [--precision P] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from playground.domain.sheet import clean_answer
from playground.domain.text import GenerationRequest
from playground.engine.fill import SheetFiller
from playground.engine.generate import generate
from playground.engine.text import load_text_model
from playground.models.embedded import EMBEDDED_ID
from playground.models.registry import Registry
from playground.tasks.sheet import Sheet, fill_prompts

EXAMPLES = [("France", "Paris"), ("Japan", "Tokyo"), ("Kenya", "Nairobi"), ("Canada", "Ottawa"),
            ("Brazil", "Brasília"), ("Australia", "Canberra"), ("Egypt", "Cairo"), ("Norway", "Oslo")]
ASKED = ["Italy", "Germany", "Spain", "Portugal", "Greece", "Poland", "Sweden", "Finland", "Denmark", "Ireland",
         "Austria", "Hungary", "Romania", "Bulgaria", "Croatia", "Serbia", "Ukraine", "Turkey", "Iran", "Iraq",
         "Syria", "Israel", "Jordan", "Saudi Arabia", "Pakistan", "India", "China", "Mongolia", "Vietnam",
         "Thailand", "Malaysia", "Indonesia", "Philippines", "South Korea", "New Zealand", "Mexico", "Cuba",
         "Colombia", "Venezuela", "Peru", "Chile", "Argentina", "Uruguay", "Bolivia", "Morocco", "Algeria",
         "Nigeria", "Ghana", "Ethiopia", "South Africa"]
MAX_NEW = 16


RESULTS = Path(__file__).resolve().parent / "results" / "sheet_fill.json"


def naive(tm, prompts, reuse: bool = False) -> tuple[float, list[str]]:
    """One cell at a time, the whole prompt each time; ``reuse``: keep the cached example rows between cells."""
    start = time.perf_counter()
    out = []
    for p in prompts:
        if tm.fast is not None and not reuse and tm.fast.n_slots:
            tm.fast.rewind(0, 0)  # nothing cached: the prompt runs from its first token
        req = GenerationRequest(prompt=p.text, temperature=0, max_new_tokens=MAX_NEW, stop=("\n",), top_logprobs=5)
        out.append(clean_answer(generate(tm, req).first.text))
    return time.perf_counter() - start, out


def batched(tm, prompts, batch: int) -> tuple[float, list[str]]:
    start = time.perf_counter()
    result = SheetFiller(tm, batch_size=batch, max_new_tokens=MAX_NEW).fill(prompts)
    return time.perf_counter() - start, [a.value for a in result.answers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--model", default=EMBEDDED_ID)
    parser.add_argument("--device", default=None)
    parser.add_argument("--precision", default=None, help="auto | fp32 | bf16 | int8 | int4 | int4-a8")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (1 on a busy machine: 2 threads on 1 free core stall each other)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    tm = load_text_model(args.model, Registry().resolve(args.model).folder, device=args.device,
                         precision=args.precision)
    sheet = Sheet(["Country", "Capital"], [list(e) for e in EXAMPLES] + [[c, ""] for c in ASKED])
    prompts = fill_prompts(sheet)
    prefix = len(tm.tokenizer(prompts[0].prefix)["input_ids"])
    print(f"model {args.model} on {tm.device}, every side on {tm.precision} · {tm.path}, "
          f"{torch.get_num_threads()} threads, "
          f"{len(prompts)} cells, {len(EXAMPLES)} example rows ({prefix} prefix tokens), batch {args.batch}")
    naive(tm, prompts[:2]), batched(tm, prompts[:4], args.batch)  # warm-up
    sides = {"one-by-one, no reuse": lambda: naive(tm, prompts),
             "one-by-one, prefix reuse": lambda: naive(tm, prompts, reuse=True),
             "filler, batch 1": lambda: batched(tm, prompts, 1),
             f"filler, batch {args.batch}": lambda: batched(tm, prompts, args.batch)}
    times: dict[str, list[float]] = {name: [] for name in sides}
    answers: dict[str, list[str]] = {}
    for _ in range(args.rounds):
        for name, side in sides.items():
            t, answers[name] = side()
            times[name].append(t)
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["one-by-one, no reuse"]
    rows = []
    for name, t in med.items():
        same = sum(a == b for a, b in zip(answers["one-by-one, no reuse"], answers[name], strict=True))
        rows.append({"side": name, "seconds": round(t, 3), "cells_per_s": round(len(prompts) / t, 2),
                     "speedup_vs_naive": round(base / t, 2), "same_answers": same})
        print(f"{name:26} {t:6.2f} s {len(prompts) / t:6.1f} cells/s  {base / t:5.2f}x  "
              f"same answers {same}/{len(prompts)}")
    result = {"bench": "sheet_fill", "command": " ".join(["python", *sys.argv]), "model": args.model,
              "engine": f"{tm.precision} · {tm.path}", "cells": len(prompts), "prefix_tokens": prefix,
              "rounds": args.rounds, "rows": rows, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "threads": torch.get_num_threads(), "torch": torch.__version__}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
