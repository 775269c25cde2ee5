"""The inspector's first view of a 300-token prompt on the embedded model (goal: 2 s on 2 cores).

"First view" = from pressing Inspect with the model loaded (the tab loads it when it opens) to every view drawn:
the engine's forward pass keeping attention and hidden states + the lens at the last positions, then the tab's
token strip, the layer × head heatmaps, the big matrix and the layer-by-layer table, painted (offscreen). The
baseline, measured in the same rounds, is the same model's plain forward over the same prompt (what a prefill
costs without the inspection); loading the eager model is measured once and reported apart.

    .venv/bin/python bench/inspect_speed.py [--rounds 5] [--tokens 300] [--threads 2]

Prints a table and writes bench/results/inspect_speed.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _results import write_result  # noqa: E402 - bench/_results.py, beside this file

GOAL_S = 2.0
SHOTS = [("France", "Paris"), ("Japan", "Tokyo"), ("Kenya", "Nairobi"), ("Canada", "Ottawa"), ("Egypt", "Cairo"),
         ("Norway", "Oslo"), ("Peru", "Lima"), ("Chile", "Santiago"), ("India", "New Delhi"), ("Spain", "Madrid"),
         ("Greece", "Athens"), ("Cuba", "Havana"), ("Ghana", "Accra"), ("Iran", "Tehran"), ("Iraq", "Baghdad"),
         ("Laos", "Vientiane"), ("Mali", "Bamako"), ("Nepal", "Kathmandu"), ("Oman", "Muscat"), ("Fiji", "Suva"),
         ("Chad", "N'Djamena"), ("Togo", "Lomé"), ("Sweden", "Stockholm"), ("Poland", "Warsaw"),
         ("Austria", "Vienna"), ("Hungary", "Budapest"), ("Portugal", "Lisbon"), ("Ireland", "Dublin"),
         ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Belgium", "Brussels"), ("Germany", "Berlin")]


def prompt_of(tokenizer, tokens: int) -> tuple[str, str]:
    """(source, prompt): few-shot capitals cut to ``tokens`` tokens in all, ending on a question."""
    question = "Country: Italy\nCapital:"
    examples = "".join(f"Country: {c}\nCapital: {k}\n\n" for c, k in SHOTS * 4)
    room = tokens - len(tokenizer(question)["input_ids"])
    ids = tokenizer(examples)["input_ids"][:room]
    source = tokenizer.decode(ids)
    while len(tokenizer(source + question)["input_ids"]) > tokens:  # decoding can merge differently
        ids = ids[:-1]
        source = tokenizer.decode(ids)
    return source, question


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from PySide6.QtWidgets import QApplication

    from playground import paths
    from playground.domain.inspect import InspectRequest
    from playground.engine.inspect.attention import inspect
    from playground.engine.inspect.model import load_inspect_model
    from playground.models.embedded import EMBEDDED_ID, ensure_embedded
    from tests.conftest import embedded_home
    from ui.inspect.tab import InspectTab

    torch.set_num_threads(args.threads)
    app = QApplication.instance() or QApplication([])
    paths.set_data_dir(embedded_home())
    folder = ensure_embedded()
    started = time.perf_counter()
    tm = load_inspect_model(EMBEDDED_ID, folder, device="cpu")
    load_s = time.perf_counter() - started
    source, prompt = prompt_of(tm.tokenizer, args.tokens)
    request = InspectRequest(prompt=prompt, source=source)
    n_tokens = len(tm.tokenizer(request.text)["input_ids"])

    tab = InspectTab(lambda: EMBEDDED_ID)
    tab.resize(1400, 900)
    tab.show()
    app.processEvents()

    def baseline() -> float:
        t0 = time.perf_counter()
        with torch.inference_mode():
            tm.model(input_ids=torch.tensor([tm.tokenizer(request.text)["input_ids"]]), use_cache=False,
                     logits_to_keep=1)
        return time.perf_counter() - t0

    def first_view() -> tuple[float, float]:
        t0 = time.perf_counter()
        insp = inspect(tm, request)
        t1 = time.perf_counter()
        tab.show_inspection(insp)
        tab.grab()  # paints the tab as it is on screen: strip, heatmaps, matrix
        tab.views.setCurrentWidget(tab.lens)
        tab.lens.grab()
        tab.views.setCurrentWidget(tab.attention)
        app.processEvents()
        return t1 - t0, time.perf_counter() - t1

    baseline(), first_view()  # warm-up: allocator, kernels, fonts
    rows: dict[str, list[float]] = {"baseline forward": [], "engine": [], "ui": [], "first view": []}
    for _ in range(args.rounds):
        rows["baseline forward"].append(baseline())
        engine_s, ui_s = first_view()
        rows["engine"].append(engine_s)
        rows["ui"].append(ui_s)
        rows["first view"].append(engine_s + ui_s)
    med = {k: statistics.median(v) for k, v in rows.items()}
    tab.shutdown()

    cpu = platform.processor() or platform.machine()
    print(f"{EMBEDDED_ID} (eager attention, fp32) · {n_tokens} tokens · {torch.get_num_threads()} threads · "
          f"{os.cpu_count()} CPUs ({cpu})")
    for name, value in med.items():
        print(f"{name:18} {value:6.3f} s  (min {min(rows[name]):.3f}, max {max(rows[name]):.3f})")
    ratio = med["first view"] / med["baseline forward"]
    print(f"first view / baseline forward: {ratio:.2f}x · goal {GOAL_S:.1f} s: "
          f"{'met' if med['first view'] <= GOAL_S else 'MISSED'}")
    print(f"loading the eager model once: {load_s:.2f} s (done when the tab opens); "
          f"cold first view (load + view): {load_s + med['first view']:.2f} s")
    written = write_result("inspect_speed", {
        "model": EMBEDDED_ID, "tokens": n_tokens, "rounds": args.rounds, "goal_s": GOAL_S,
        "median_s": {k: round(v, 4) for k, v in med.items()}, "all_s": {k: [round(x, 4) for x in v]
                                                                         for k, v in rows.items()},
        "first_view_over_baseline": round(ratio, 2), "load_s": round(load_s, 3),
        "goal_met": med["first view"] <= GOAL_S})
    print(f"wrote {written.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
