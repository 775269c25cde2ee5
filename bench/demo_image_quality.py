"""How well the shipped demo image model ("demo-shapes") follows prompts, re-measured from assets/demo_image_model.

Guidance is picked on the tuning prompts only (shapes.tuning_captions); the figures are measured on the scored prompts
(shapes.scored_captions), which no choice looked at. Both sets are unseen in training. Each prompt is drawn with
several seeds; the checker is the one the training script uses (shapes.score). The baseline is chance for the
checker's verdicts (1/8 colours, 1/3 shapes), so each figure is also printed as a ratio to it.

    flock /tmp/pg-cpu.lock .venv/bin/python bench/demo_image_quality.py   # writes bench/results/demo_image_quality.json
    .venv/bin/python bench/demo_image_quality.py --seeds 1 --steps 8 --no-write             # quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._results import write_result  # noqa: E402
from playground.tasks import shapes  # noqa: E402

GUIDANCES = (2.0, 3.0, 5.0, 7.5)
CHANCE = {"colour": 1 / len(shapes.COLOURS), "shape": 1 / len(shapes.SHAPES),
          "colour_and_shape": 1 / (len(shapes.COLOURS) * len(shapes.SHAPES))}


def load_pipeline(folder: Path | None = None):
    """The shipped diffusers folder, loaded the way the training script evaluates it (safetensors only)."""
    from diffusers import StableDiffusionPipeline

    from playground.models.demo_image import demo_image_folder

    pipe = StableDiffusionPipeline.from_pretrained(folder or demo_image_folder(), use_safetensors=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def rates(pipe, captions: list[shapes.Caption], guidance: float, steps: int, seeds: int) -> dict[str, float]:
    """shapes.score over every caption drawn once per seed 0..seeds-1."""
    import numpy as np
    import torch

    images, judged = [], []
    for seed in range(seeds):
        gen = torch.Generator(device="cpu").manual_seed(seed)
        out = pipe([c.text for c in captions], num_inference_steps=steps, guidance_scale=guidance, generator=gen,
                   output_type="np").images
        images += [(np.clip(im, 0, 1) * 255).round().astype(np.uint8) for im in out]
        judged += captions
    return shapes.score(images, judged)


def measure(pipe, steps: int, seeds: int, guidances: tuple[float, ...] = GUIDANCES,
            tuning: list[shapes.Caption] | None = None, scored: list[shapes.Caption] | None = None) -> dict[str, Any]:
    """Pick guidance by colour-and-shape on the tuning prompts, then score the scored prompts at that guidance."""
    tuning = shapes.tuning_captions() if tuning is None else tuning
    scored = shapes.scored_captions() if scored is None else scored
    assert not {c.text for c in tuning} & {c.text for c in scored}, "tuning and scored prompts overlap"
    tuned = {g: rates(pipe, tuning, g, steps, seeds) for g in guidances}
    best = max(guidances, key=lambda g: (tuned[g]["colour_and_shape"], -g))  # ties: the lower guidance
    return {"steps": steps, "seeds": seeds, "guidance": best,
            "tuning": {"prompts": len(tuning), "by_guidance": {str(g): _round(r) for g, r in tuned.items()}},
            "held_out": {"prompts": len(scored), **_round(rates(pipe, scored, best, steps, seeds))}}


def _round(r: dict[str, float]) -> dict[str, float]:
    return {k: (int(v) if k == "n" else round(v, 3)) for k, v in r.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="denoising steps (the model's default: 20)")
    ap.add_argument("--seeds", type=int, default=2, help="images per prompt")
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/results/ alone")
    args = ap.parse_args(argv)
    import torch

    t0 = time.perf_counter()
    result = measure(load_pipeline(), args.steps, args.seeds)
    seconds = time.perf_counter() - t0
    for g, r in result["tuning"]["by_guidance"].items():
        print(f"tuning ({result['tuning']['prompts']} prompts × {args.seeds} seeds), guidance {g}: colour "
              f"{r['colour']:.0%}, shape {r['shape']:.0%}, both {r['colour_and_shape']:.0%}")
    held = result["held_out"]
    print(f"held-out ({held['prompts']} prompts × {args.seeds} seeds = {held['n']} images), guidance "
          f"{result['guidance']}, {args.steps} steps:")
    for k in ("colour", "shape", "colour_and_shape", "background", "position"):
        ratio = f" ({held[k] / CHANCE[k]:.1f}× chance {CHANCE[k]:.0%})" if k in CHANCE else ""
        print(f"  {k}: {held[k]:.0%}{ratio}")
    print(f"{seconds:.0f} s, {torch.get_num_threads()} torch threads")
    if not args.no_write:
        path = write_result("demo_image_quality", {**result, "chance": {k: round(v, 3) for k, v in CHANCE.items()},
                                                   "seconds": round(seconds, 1)})
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
