"""Image engine overhead: seconds per denoising step through ``playground.engine.image.generate`` (preview per
step, cancel checks, our own decode) vs calling the diffusers pipeline directly, same model, same process.

Runs alternate so machine noise hits both; prints medians and the ratio (goal: ours / direct <= 1.05).
Usage: .venv/bin/python bench/image_steps.py [--model demo-shapes] [--steps 20] [--rounds 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from playground.domain.image import ImageRequest
from playground.engine.image import generate, load_image_model
from playground.models.demo_image import DEMO_IMAGE_ID


def direct(model, prompt: str, steps: int, guidance: float, seed: int) -> float:
    gen = torch.Generator(device="cpu").manual_seed(seed)
    w, h = model.defaults["width"], model.defaults["height"]
    start = time.perf_counter()
    with torch.inference_mode():
        model.pipe(prompt=prompt, num_inference_steps=steps, guidance_scale=guidance, width=w, height=h,
                   generator=gen, output_type="pil")
    return (time.perf_counter() - start) / steps


def ours(model, prompt: str, steps: int, guidance: float, seed: int) -> float:
    events = []
    start = time.perf_counter()
    generate(model, ImageRequest(prompt, steps=steps, guidance=guidance, seed=seed), events.append)
    assert len(events) == steps
    return (time.perf_counter() - start) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEMO_IMAGE_ID)
    ap.add_argument("--prompt", default="a blue square on a yellow background")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_image_model(args.model, device=args.device)
    guidance = model.defaults["guidance"] if args.guidance is None else args.guidance
    print(f"model {model.id} ({model.family}) on {model.device}, {model.defaults['width']}x"
          f"{model.defaults['height']}, {args.steps} steps, CFG {guidance}, scheduler "
          f"{type(model.pipe.scheduler).__name__}")
    direct(model, args.prompt, 2, guidance, 0)  # warm-up both paths
    ours(model, args.prompt, 2, guidance, 0)
    d, o = [], []
    for r in range(args.rounds):
        d.append(direct(model, args.prompt, args.steps, guidance, r))
        o.append(ours(model, args.prompt, args.steps, guidance, r))
    md, mo = statistics.median(d), statistics.median(o)
    print(f"direct pipeline: {md * 1000:.2f} ms/step (runs: {', '.join(f'{x * 1000:.1f}' for x in d)})")
    print(f"our generate:    {mo * 1000:.2f} ms/step (runs: {', '.join(f'{x * 1000:.1f}' for x in o)})")
    print(f"ratio ours / direct: {mo / md:.3f}  (goal <= 1.05)")


if __name__ == "__main__":
    main()
