"""What drawing a token costs after the model has run, at the vocabulary sizes of the models people bring (SmolLM2's
49k, Qwen2.5's 152k, Gemma's 262k): the sampler (``sampling.pick_token``: softmax, top-p among the likeliest,
one draw by the running sum) against the previous one measured in the same run (a full sort for top-p,
``torch.multinomial`` for the draw), both on the same random logits, with and without top-p 0.9; the top-k by
chunks (``sampling.top_k``: a token's 5 alternatives, top-p's first 64) against ``torch.topk``; then the whole
sampled generation on the embedded model and on Gemma-3-270M's GGUF (when the bench models are there) against its
greedy decode steps alone.

    .venv/bin/python bench/sampling_speed.py [--rounds 30]

Writes bench/results/sampling_speed[_avx2].json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._results import isa_suffix, write_result  # noqa: E402

GEMMA = Path.home() / ".cache" / "playground-bench" / "models" / "gemma-3-270m-Q4_K_M.gguf"


def previous_pick(logits, temperature: float, top_p: float, generator) -> int:
    """The sampler before this bench: top-p by a full sort, then ``torch.multinomial``."""
    import torch

    logits = logits / temperature
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        soft = torch.softmax(sorted_logits, dim=0)
        drop = (soft.cumsum(0) - soft) >= top_p
        logits = logits.scatter(0, order, sorted_logits.masked_fill(drop, float("-inf")))
    return int(torch.multinomial(torch.softmax(logits, dim=0), 1, generator=generator))


def per_call_ms(fn, rounds: int) -> float:
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def sampler_rows(rounds: int) -> list[dict]:
    import torch

    from playground.domain.text import GenerationRequest
    from playground.engine.sampling import pick_token

    rows = []
    seen = torch.zeros(0, dtype=torch.long)
    for vocab in (49_152, 151_936, 262_144):
        logits = torch.randn(vocab, generator=torch.Generator().manual_seed(vocab)) * 3
        for top_p in (1.0, 0.9):
            req = GenerationRequest(prompt="x", temperature=0.7, top_p=top_p)
            gen = torch.Generator().manual_seed(0)
            ours = per_call_ms(partial(pick_token, logits, req, seen, gen), rounds)
            before = per_call_ms(partial(previous_pick, logits, 0.7, top_p, gen), rounds)
            rows.append({"vocab": vocab, "top_p": top_p, "ours_ms": round(ours, 3), "previous_ms": round(before, 3),
                         "speedup": round(before / ours, 2)})
            print(f"vocab {vocab:>7}  top_p {top_p}: {ours:.2f} ms a token (previous sampler {before:.2f} ms, "
                  f"{before / ours:.1f}x)")
    return rows


def topk_rows(rounds: int) -> list[dict]:
    import torch

    from playground.engine.sampling import top_k

    rows = []
    for vocab in (49_152, 151_936, 262_144):
        scores = torch.randn(vocab, generator=torch.Generator().manual_seed(vocab))
        for k in (5, 64):
            ours = per_call_ms(partial(top_k, scores, k), rounds)
            before = per_call_ms(partial(torch.topk, scores, k), rounds)
            rows.append({"vocab": vocab, "k": k, "ours_ms": round(ours, 3), "torch_topk_ms": round(before, 3),
                         "speedup": round(before / ours, 2)})
            print(f"vocab {vocab:>7}  top-{k}: {ours:.3f} ms (torch.topk {before:.3f} ms, {before / ours:.1f}x)")
    return rows


def generation_rows() -> list[dict]:
    import torch

    from playground.domain.text import GenerationRequest
    from playground.engine.generate import generate
    from playground.engine.gguf_text import load_gguf_text_model
    from playground.engine.text import load_text_model
    from playground.models import embedded

    models = [("smollm2-135m (embedded)", lambda: load_text_model("embedded", embedded.ensure_embedded(),
                                                                  device="cpu"))]
    if GEMMA.exists():
        models.append(("gemma-3-270m-Q4_K_M", lambda: load_gguf_text_model("gemma", GEMMA, device="cpu")))
    rows = []
    for name, load in models:
        tm = load()
        tokens = 64
        with torch.inference_mode():
            token = int(tm.fast.prefill(0, list(range(100, 132)), reuse=False).argmax())
            start = time.perf_counter()
            for _ in range(tokens):
                token = int(tm.fast.step([token], [0])[0].argmax())
            steps = tokens / (time.perf_counter() - start)
        row = {"model": name, "greedy_steps_tok_s": round(steps, 1)}
        for top_p in (1.0, 0.9):
            req = GenerationRequest(prompt="The capital of France is", max_new_tokens=tokens, temperature=0.7,
                                    top_p=top_p, seed=1)
            generate(tm, req)
            start = time.perf_counter()
            out = generate(tm, req)
            made = out.first.token_count
            rate = made / (time.perf_counter() - start)
            row[f"sampled_top_p_{top_p}_tok_s"] = round(rate, 1)
            print(f"{name}: sampled generation (top_p {top_p}) {rate:.1f} tok/s; greedy decode steps alone "
                  f"{steps:.1f} tok/s ({rate / steps:.2f}x)")
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    data = {"sampler": sampler_rows(args.rounds), "top_k": topk_rows(args.rounds), "generation": generation_rows(),
            "note": "ours_ms / previous_ms: one token's sampling after the logits, medians; the generation rows "
                    "include prefill, detokenization and the top-5 log-probabilities the app shows."}
    print("wrote", write_result("sampling_speed" + isa_suffix(), data))


if __name__ == "__main__":
    main()
