"""GPU check of the image engine: the demo model on CUDA in its auto dtype, seeded twice, red-circle check.

Usage (on a CUDA machine): python bench/gpu_image_check.py
"""

from __future__ import annotations

import time

import numpy as np

from playground.domain.image import ImageRequest
from playground.engine.image import generate, load_image_model
from playground.models.demo_image import DEMO_IMAGE_ID, demo_image_folder


def main() -> None:
    model = load_image_model(DEMO_IMAGE_ID, demo_image_folder())
    print("device", model.device if hasattr(model, "device") else "?", "dtype",
          getattr(model, "dtype", "?"))
    steps = []
    req = ImageRequest(prompt="a red circle", seed=7, steps=20)
    first = generate(model, req, on_event=lambda e: steps.append(time.perf_counter()))
    again = generate(model, req)
    a, b = (np.asarray(r.images[0]) for r in (first, again))
    print("same seed, same image:", bool((a == b).all()), "steps seen:", len(steps))
    per_step = (steps[-1] - steps[0]) / max(len(steps) - 1, 1)
    print(f"seconds per step: {per_step:.4f}")
    img = a.astype(int)
    red = ((img[..., 0] > 150) & (img[..., 1] < 90) & (img[..., 2] < 90)).mean()
    print(f"red fraction of 'a red circle': {red:.2f}")


if __name__ == "__main__":
    main()
