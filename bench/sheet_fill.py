"""Sheet fill speed: 50 empty cells filled batched with a shared prefix vs one by one, same model, same process.

One-by-one is the naive path: the engine's ``generate`` on each cell's whole prompt (greedy, stop at newline),
re-reading the example rows every time. The filler prefills the examples once and decodes cells in batches.
Runs alternate so machine noise hits both; prints medians, the ratio, and whether the answers agree.
Usage: .venv/bin/python bench/sheet_fill.py [--rounds 2] [--batch 8] [--model ID] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

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


def naive(tm, prompts) -> tuple[float, list[str]]:
    """One cell at a time, the whole prompt each time."""
    start = time.perf_counter()
    out = []
    for p in prompts:
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
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (1 on a busy machine: 2 threads on 1 free core stall each other)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    tm = load_text_model(args.model, Registry().resolve(args.model).folder, device=args.device)
    sheet = Sheet(["Country", "Capital"], [list(e) for e in EXAMPLES] + [[c, ""] for c in ASKED])
    prompts = fill_prompts(sheet)
    prefix = len(tm.tokenizer(prompts[0].prefix)["input_ids"])
    print(f"model {args.model} on {tm.device} ({tm.dtype}), {torch.get_num_threads()} threads, "
          f"{len(prompts)} cells, {len(EXAMPLES)} example rows ({prefix} prefix tokens), batch {args.batch}")
    naive(tm, prompts[:2]), batched(tm, prompts[:4], args.batch)  # warm-up
    times: dict[str, list[float]] = {"one-by-one": [], "batched": [], "prefix only (batch 1)": []}
    answers: dict[str, list[str]] = {}
    for _ in range(args.rounds):
        t, answers["one-by-one"] = naive(tm, prompts)
        times["one-by-one"].append(t)
        t, answers["batched"] = batched(tm, prompts, args.batch)
        times["batched"].append(t)
        t, _ = batched(tm, prompts, 1)
        times["prefix only (batch 1)"].append(t)
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, t in med.items():
        print(f"{name:22} {t:6.2f} s   {len(prompts) / t:6.1f} cells/s")
    same = sum(a == b for a, b in zip(answers["one-by-one"], answers["batched"], strict=True))
    print(f"ratio one-by-one/batched: {med['one-by-one'] / med['batched']:.2f}x faster "
          f"(prefix sharing alone: {med['one-by-one'] / med['prefix only (batch 1)']:.2f}x); "
          f"same answers on {same}/{len(prompts)} cells")


if __name__ == "__main__":
    main()
