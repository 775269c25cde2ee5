"""The README's table of issue 17's goals, printed from the committed result files in bench/results/ (so every
figure in it traces to a JSON with its command and machine). Usage: .venv/bin/python bench/readme_table.py [--isa avx2]
(``--isa``: the rows measured where the kernels ran that ISA's path: vs_llamacpp_avx2.json, gguf_load_avx2.json and
busy_decode_avx2.json)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def verdict(value: float | None, goal: float, bar: float | None = None, lower_is_better: bool = False) -> str:
    if value is None:
        return "not measured"
    ok = value <= goal if lower_is_better else value >= goal
    if ok:
        return "met"
    if bar is not None and (value <= bar if lower_is_better else value >= bar):
        return "bar met, goal missed"
    return "**missed**"


def load_verdict(row: dict, floor: dict | None) -> str:
    """A first load's verdict, and where it was missed, what bench/floors.py measured bounds it."""
    said = verdict(row["load_ratio"], 2.0, lower_is_better=True)
    if said == "met" or not floor:
        return said
    return (f"{said} (fresh memory for its copy alone: {floor['fresh_memory_x_llama_cpp']:.2f}×; without a copy: "
            f"{floor['ours_in_place_x_llama_cpp']:.2f}×; floors.json)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--isa", default="", help="another kernel ISA's result files (avx2)")
    suffix = f"_{ap.parse_args().isa}" if ap.parse_args().isa else ""
    vs = load(f"vs_llamacpp{suffix}")
    busy, speed = load(f"busy_decode{suffix}"), load("decode_speed") if not suffix else {}
    models = vs.get("models", {})
    floors = load("floors") if not suffix else {}  # bench/floors.py: what bounds the missed goals
    rss_floors = floors.get("rss", {})
    load_floors = {row.get("file"): row for row in floors.get("load", {}).values()}
    print("| goal (issue 17) | target | measured | verdict |\n|---|---|---|---|")

    def per_model(label: str, key: str, goal: float, bar: float | None = None, lower: bool = False) -> None:
        for name, row in models.items():
            if key != "decode" and row.get("precision", "int4") != "int4":
                continue  # another precision's rows: decode only
            value = row["ratios"][key]
            n_ctx = row.get("llama_cpp_n_ctx", 2048)
            # before the bench gave the long runs their own worker, llama.cpp's RSS included an 8k KV cache
            note = f" (llama.cpp at n_ctx {n_ctx:,}: its KV cache counted)" if key == "peak_rss" and n_ctx != 2048 \
                else ""
            said = verdict(value, goal, bar, lower)
            floor = rss_floors.get(name) if key == "peak_rss" and said != "met" else None
            if floor:
                said += (f" (its floor with torch: {floor['floor_x_llama_cpp']:.2f}×, with the tokenizer "
                         f"{floor['floor_with_tokenizer_x_llama_cpp']:.2f}×; floors.json)")
            print(f"| {label}, {name} | {'≤' if lower else '≥'} {goal}× llama.cpp"
                  f"{f' (bar {bar}×)' if bar else ''} | {value:.2f}×{note} | {said} |")

    per_model("decode", "decode", 1.0, 0.8)
    per_model("prefill 512 tokens", "prefill_512", 1.5)
    per_model("peak RSS", "peak_rss", 1.25, lower=True)
    for name, row in models.items():
        long = row.get("long_context", {}).get("8192")
        if long:
            print(f"| decode at 8k context, {name} | ≥ 0.9× llama.cpp | {long['ratio']:.2f}× "
                  f"({long['ours']:.0f} vs {long['llama.cpp']:.0f} tok/s) | {verdict(long['ratio'], 0.9)} |")
    gguf = load(f"gguf_load{suffix}")  # bench/gguf_load.py (the GGUF loader's own bench)
    for row in gguf.get("rows", []):
        print(f"| first load of a new GGUF, {row['model']} | ≤ 2× llama.cpp's | {row['load_ratio']:.2f}× "
              f"({row['ours_load_s']:.2f} vs {row['llama_cpp_load_s']:.2f} s; gguf_load{suffix}.json) | "
              f"{load_verdict(row, load_floors.get(row['model']))} |")
    if not gguf:
        print("| first load of a new GGUF | ≤ 2× llama.cpp's | – | not measured |")
    for row in busy.get("rows", []):
        if row["config"] == "playground default":
            print(f"| decode with one busy competitor | ≥ 40% of quiet | {row['busy_over_quiet']:.0%} "
                  f"({row['busy_tok_s']:.0f} vs {row['quiet_tok_s']:.0f} tok/s) | "
                  f"{verdict(row['busy_over_quiet'], 0.40)} |")
    ref = speed.get("rows", {}).get("transformers generate", {}).get("perplexity")
    for name, row in speed.get("rows", {}).items():
        if name.startswith("ours") and "agreement" in row and ref:
            delta = row["perplexity"] / ref - 1
            n = speed.get("perplexity_text_tokens")
            print(f"| quality {name}, {speed.get('model')} | ≥ 19/20 answers = fp32; ppl within 1% over ≥ 2,000 "
                  f"tokens | {round(row['agreement'] * 20)}/20; ppl {delta:+.1%} over {n} tokens | "
                  f"{'met' if row.get('quality_ok') else '**missed**'} |")
    for name, row in models.items():
        print(f"\n{name}: {row['what']}; ours {row['ours_engine']}: decode {row['ours']['decode_tok_s']:.1f} vs "
              f"{row['llama.cpp']['decode_tok_s']:.1f} tok/s, prefill 512 {row['ours']['prefill_512_s']:.2f} vs "
              f"{row['llama.cpp']['prefill_512_s']:.2f} s, peak RSS {row['ours']['peak_rss_mb']:.0f} vs "
              f"{row['llama.cpp']['peak_rss_mb']:.0f} MB", end="")
        for n, lc in row.get("long_context", {}).items():
            print(f"; decode at {n}: {lc['ours']:.0f} vs {lc['llama.cpp']:.0f} tok/s", end="")
        print()


if __name__ == "__main__":
    main()
