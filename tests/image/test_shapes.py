"""The synthetic shapes data and the checker that scores the demo model agree on drawn images."""

from __future__ import annotations

import random

from playground.tasks import shapes


def test_checker_reads_drawn_shapes():
    rng = random.Random(3)
    caps = [shapes.random_caption(rng) for _ in range(300)]
    rates = shapes.score(list(shapes.render(caps, 64, rng)), caps)
    assert rates["colour"] == rates["shape"] == rates["background"] == 1.0
    assert rates["position"] >= 0.97


def test_held_out_prompts_are_fixed_and_balanced():
    held = shapes.held_out_captions()
    assert len(held) == 50 and held == shapes.held_out_captions()
    assert {c.shape for c in held} == set(shapes.SHAPES) and {c.colour for c in held} == set(shapes.COLOURS)
    rng = random.Random(0)
    texts = {c.text for c in held}
    assert not any(shapes.random_caption(rng, frozenset(texts)).text in texts for _ in range(2000))


def test_caption_grammar():
    c = shapes.Caption("orange", "triangle", "blue", "at the top left")
    assert c.text == "an orange triangle on a blue background at the top left"
    assert shapes.parse_caption(c.text) == c
    assert shapes.parse_caption("a red circle") == shapes.Caption("red", "circle")
    assert shapes.Caption("white", "square").effective_background == "black"
    assert shapes.parse_caption("a photo of a cat") is None
