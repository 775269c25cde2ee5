"""The shipped demo model follows a simple prompt (trained by scripts/train_demo_image_model.py)."""

from __future__ import annotations

import numpy as np

from playground.domain.image import ImageRequest
from playground.engine.image import generate
from playground.tasks import shapes


def test_demo_model_is_labelled_and_loads(demo_model):
    assert demo_model.demo and demo_model.family == "demo"
    assert demo_model.defaults["width"] == 64 and demo_model.description


def test_a_red_circle_is_predominantly_red(demo_model):
    r = generate(demo_model, ImageRequest("a red circle", seed=0, batch=4))
    judged = [shapes.judge(np.array(im), shapes.Caption("red", "circle")) for im in r.images]
    assert sum(j.colour == "red" for j in judged) >= 3, judged
    assert sum(j.shape == "circle" for j in judged) >= 2, judged
