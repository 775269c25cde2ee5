"""Decode speed and time to first token: our generation loop vs plain ``model.generate``, same process.

Runs alternate (ours, baseline, ours, ...) so machine noise hits both; prints medians and ratios.
Usage: .venv/bin/python bench/decode_speed.py [--tokens 128] [--rounds 3] [--model ID]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from playground.domain import GenerationRequest
from playground.engine.generate import generate
from playground.engine.text import load_text_model
from playground.models.embedded import EMBEDDED_ID
from playground.models.registry import Registry
from playground.tasks.presets import load_presets


def sync(tm) -> None:
    if tm.device.type == "cuda":
        torch.cuda.synchronize()


def baseline(tm, prompt: str, new_tokens: int) -> tuple[float, float, int]:
    """(ttft_s, decode tok/s, tokens) for greedy ``model.generate``; TTFT from a 1-token call."""
    ids = tm.tokenizer(prompt, return_tensors="pt")["input_ids"].to(tm.device)
    kwargs = {"do_sample": False, "pad_token_id": tm.tokenizer.eos_token_id}
    with torch.inference_mode():
        sync(tm)
        start = time.perf_counter()
        tm.model.generate(ids, max_new_tokens=1, **kwargs)
        sync(tm)
        ttft = time.perf_counter() - start
        start = time.perf_counter()
        out = tm.model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **kwargs)
        sync(tm)
        total = time.perf_counter() - start
    n = out.shape[1] - ids.shape[1]
    return ttft, (n - 1) / max(total - ttft, 1e-9), n


def ours(tm, prompt: str, new_tokens: int) -> tuple[float, float, int]:
    result = generate(tm, GenerationRequest(prompt=prompt, temperature=0, max_new_tokens=new_tokens)).first
    return result.timings.ttft_s, result.timings.tokens_per_s, len(result.tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default=EMBEDDED_ID)
    parser.add_argument("--random", action="store_true",
                        help="a random model of SmolLM2-135M's shape instead (no weights needed: GPU checks)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    if args.random:
        from tests.tiny import SMOLLM2_135M, build_tiny_llama

        args.model = "random-smollm2-shape"
        folder = build_tiny_llama(Path(tempfile.mkdtemp()), vocab_size=49152, **SMOLLM2_135M)
    else:
        folder = Registry().resolve(args.model).folder
    tm = load_text_model(args.model, folder, device=args.device)
    preset = load_presets("prompt")[0]
    prompt = preset.fields["source"] + preset.fields["prompt"]
    print(f"model {args.model} on {tm.device} ({tm.dtype}), {torch.get_num_threads()} threads, "
          f"prompt {len(tm.tokenizer(prompt)['input_ids'])} tokens, {args.tokens} new tokens, greedy")
    ours(tm, prompt, 8), baseline(tm, prompt, 8)  # warm-up
    rows: dict[str, list[tuple[float, float, int]]] = {"engine": [], "generate": []}
    for _ in range(args.rounds):
        rows["engine"].append(ours(tm, prompt, args.tokens))
        rows["generate"].append(baseline(tm, prompt, args.tokens))
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v), v[-1][2])
           for k, v in rows.items()}
    for name, (ttft, tps, n) in med.items():
        print(f"{name:9} ttft {ttft * 1000:7.1f} ms   decode {tps:6.1f} tok/s   ({n} tokens)")
    print(f"ratio engine/generate: decode {med['engine'][1] / med['generate'][1]:.2f}x, "
          f"ttft {med['generate'][0] / med['engine'][0]:.2f}x faster")


if __name__ == "__main__":
    main()
