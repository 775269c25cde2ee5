"""Few-shot vs LoRA on the Sheet presets, and how long fine-tuning takes: the numbers behind the Sheet's chart.

For each preset (US states → population, country → capital → continent) runs what Evaluate with "Fine-tune (LoRA)"
runs (``playground.tasks.sheet_transfer.run_transfer``, default settings) and prints the three curves and the
training time per k. Then trains adapters on 8 and 16 rows (default settings, nothing saved) to time a "Save
adapter…". The baseline, measured in the same run, is the few-shot curve's own evaluation time: each training is
printed as a multiple of it. Writes bench/results/sheet_transfer.json (machine, versions, command, numbers).
Usage: .venv/bin/python bench/sheet_transfer.py [--model ID] [--epochs N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from _results import write_result  # bench/_results.py, beside this file

from playground import paths
from playground.engine.lora import LoraSettings, LoraTrainer
from playground.engine.text import load_text_model
from playground.models.embedded import EMBEDDED_ID
from playground.models.registry import Registry
from playground.tasks.sheet import Sheet
from playground.tasks.sheet_transfer import LABELS, plan_transfer, run_transfer, training_examples

PRESETS = {"sheet_states_population": "Population", "sheet_country_capital": "Capital"}
# 16 rows for the training-time check (the presets have 12 and 6 complete rows).
CAPITALS16 = [("France", "Paris"), ("Japan", "Tokyo"), ("Kenya", "Nairobi"), ("Canada", "Ottawa"),
              ("Brazil", "Brasília"), ("Australia", "Canberra"), ("Egypt", "Cairo"), ("Norway", "Oslo"),
              ("Italy", "Rome"), ("Germany", "Berlin"), ("Spain", "Madrid"), ("Peru", "Lima"), ("Chile", "Santiago"),
              ("Greece", "Athens"), ("India", "New Delhi"), ("Mexico", "Mexico City")]


def preset_sheet(name: str) -> Sheet:
    """The table of ``assets/presets/<name>.json``, as the Sheet tab loads it."""
    data = json.loads((paths.assets_dir() / "presets" / f"{name}.json").read_text(encoding="utf-8"))
    f = data["fields"]
    return Sheet(list(f["columns"]), [list(r) for r in f["rows"]], dict(f.get("instructions", {})))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=EMBEDDED_ID)
    parser.add_argument("--epochs", type=int, default=LoraSettings().epochs)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    settings = LoraSettings(epochs=args.epochs)
    started = time.perf_counter()
    tm = load_text_model(args.model, Registry().resolve(args.model).folder, device=args.device, precision="fp32")
    print(f"model {args.model} on {tm.device} ({tm.dtype}), {torch.get_num_threads()} threads, "
          f"load {tm.load_s:.1f} s; LoRA {settings.as_dict()}")
    out: dict = {"device": str(tm.device), "model": args.model, "settings": settings.as_dict(), "presets": {},
                 "training": []}
    baseline = 0.0  # the first preset's few-shot evaluation time
    for name, column in PRESETS.items():
        sheet = preset_sheet(name)
        plan = plan_transfer(sheet, column)
        t0 = time.perf_counter()
        marks: dict[str, float] = {}

        def on_progress(p, marks=marks, t0=t0):
            if p.phase != "few-shot":  # the few-shot curve (the baseline) is asked first, alone
                marks.setdefault("few_shot_s", time.perf_counter() - t0)

        result = run_transfer(tm, plan, settings, on_progress)
        total = time.perf_counter() - t0
        few_s = marks.get("few_shot_s", total)
        baseline = baseline or few_s
        print(f"\n{name} · column {column!r} · {len(plan.pool) + len(plan.queries)} complete rows, "
              f"{len(plan.queries)} held out · k = {list(plan.shots)} · {total:.0f} s in all"
              + "".join(f"\n  note: {n}" for n in plan.notes))
        metric = "numeric within 5%" if plan.numeric else "normalised"
        print(f"  few-shot curve asked in {few_s:.1f} s (baseline)")
        print(f"  {'k':>3}  " + "  ".join(f"{LABELS[m]:>16}" for m in LABELS) + f"  train s  ×baseline  ({metric})")
        for k in plan.shots:
            row = {p.method: p for p in result.points if p.k == k}
            print(f"  {k:>3}  " + "  ".join(f"{row[m].accuracy:>16.0%}" for m in LABELS)
                  + f"  {row['lora'].train_s:7.1f}  {row['lora'].train_s / few_s:8.1f}x")
        out["presets"][name] = {"column": column, "metric": metric, "held_out": len(plan.queries),
                                "complete_rows": len(plan.pool) + len(plan.queries), "notes": list(plan.notes),
                                "seconds": round(total, 1), "few_shot_s": round(few_s, 1),
                                "points": [p.record() for p in result.points]}
    sheet = Sheet(["Country", "Capital"], [list(r) for r in CAPITALS16])
    print("\ntraining alone (default settings), as Save adapter… does:")
    for rows in (8, 16):
        with LoraTrainer(tm, settings) as trainer:
            trained = trainer.train(training_examples(sheet, 1, list(range(rows)), seed=settings.seed))
        print(f"  {rows:>2} rows: {trained.steps} steps in {trained.seconds:5.1f} s "
              f"({trained.seconds / trained.steps:.2f} s/step, {trained.seconds / baseline:.1f}x the states' few-shot "
              f"curve), loss {trained.losses[0]:.2f} → {trained.losses[-1]:.2f}")
        out["training"].append({"rows": rows, "steps": trained.steps, "seconds": round(trained.seconds, 1),
                                "x_baseline": round(trained.seconds / baseline, 2),
                                "first_loss": round(trained.losses[0], 3), "last_loss": round(trained.losses[-1], 3)})
    out["total_s"] = round(time.perf_counter() - started, 1)
    print(f"\nwrote {write_result('sheet_transfer', out)} ({out['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
