"""A1111 "parameters" text: format, parse, PNG round-trip, content-addressed storage."""

from __future__ import annotations

import hashlib

from PIL import Image

from playground.tasks.image_meta import format_parameters, parse_parameters, png_bytes, read_settings, store_png

SETTINGS = {"prompt": "a blue square on a yellow background", "negative_prompt": "blurry, red",
            "steps": 20, "scheduler": "Euler a", "guidance": 7.5, "seed": 1234, "width": 64, "height": 48,
            "model": "demo-shapes"}


def test_format_matches_a1111():
    text = format_parameters(SETTINGS)
    assert text == ("a blue square on a yellow background\nNegative prompt: blurry, red\n"
                    "Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 1234, Size: 64x48, Model: demo-shapes")


def test_round_trip():
    assert parse_parameters(format_parameters(SETTINGS)) == SETTINGS


def test_reads_a1111_text_with_extra_fields():
    text = ("masterpiece, a cat\nwearing a hat\nNegative prompt: lowres\nSteps: 28, Sampler: DPM++ 2M, "
            'Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 512x768, Model hash: abc123, Model: "sd, v1.5", '
            "Version: v1.9.4")
    got = parse_parameters(text)
    assert got["prompt"] == "masterpiece, a cat\nwearing a hat"
    assert got["negative_prompt"] == "lowres"
    assert (got["steps"], got["scheduler"], got["guidance"], got["seed"]) == (28, "DPM++ 2M", 7.0, 42)
    assert (got["width"], got["height"], got["model"]) == (512, 768, "sd, v1.5")
    assert got["extra"]["Schedule type"] == "Karras" and got["extra"]["Model hash"] == "abc123"


def test_prompt_only():
    assert parse_parameters("just a prompt") == {"prompt": "just a prompt", "negative_prompt": ""}


def test_png_round_trip(tmp_path):
    data = png_bytes(Image.new("RGB", (8, 8), "red"), {**SETTINGS, "model": "m, with comma"})
    path = tmp_path / "x.png"
    path.write_bytes(data)
    assert read_settings(path) == {**SETTINGS, "model": "m, with comma"}
    assert read_settings(data)["seed"] == 1234
    plain = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(plain)
    assert read_settings(plain) is None


def test_store_png_content_addressed(tmp_path):
    data = png_bytes(Image.new("RGB", (8, 8), "blue"), SETTINGS)
    ref = store_png(data, tmp_path)
    digest = hashlib.sha256(data).hexdigest()
    assert ref == {"path": f"images/{digest}.png", "sha256": digest}
    assert (tmp_path / ref["path"]).read_bytes() == data
    assert store_png(data, tmp_path) == ref  # idempotent
