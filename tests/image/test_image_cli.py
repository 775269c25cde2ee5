"""``playground image`` through its own parser (the same add_parser/run pair cli.py wires in)."""

from __future__ import annotations

import argparse
import json

import pytest

from playground.cli import image as image_cli
from playground.cli.main import _common
from playground.errors import ParameterError
from playground.tasks.image_meta import read_settings


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    image_cli.add_parser(parser.add_subparsers(dest="command"), _common())
    return image_cli.run(parser.parse_args(argv), lambda e: None)


def test_image_json(tiny_sd_dir, tmp_path, capsys):
    out = tmp_path / "out.png"
    code = run_cli(["image", "a red circle", "--out", str(out), "--model", str(tiny_sd_dir), "--steps", "2",
                    "--seed", "11", "--guidance", "4", "--negative", "blue", "--width", "48", "--height", "32",
                    "--scheduler", "Euler a", "--device", "cpu", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"files", "seed", "model", "timings"}
    assert data["files"] == [str(out)] and data["seed"] == 11 and data["timings"]["steps"] == 2
    s = read_settings(out)
    assert (s["prompt"], s["negative_prompt"], s["steps"], s["seed"], s["guidance"]) == ("a red circle", "blue", 2,
                                                                                         11, 4.0)
    assert (s["width"], s["height"], s["scheduler"]) == (48, 32, "Euler a")


def test_image_batch_files(tiny_sd_dir, tmp_path, capsys):
    out = tmp_path / "b.png"
    assert run_cli(["image", "x", "--out", str(out), "--model", str(tiny_sd_dir), "--steps", "1", "--seed", "3",
                    "--batch", "2"]) == 0
    assert [read_settings(tmp_path / f"b-{i}.png")["seed"] for i in (1, 2)] == [3, 4]


def test_width_without_height(tmp_path):
    with pytest.raises(ParameterError, match="both"):
        run_cli(["image", "x", "--out", str(tmp_path / "a.png"), "--width", "64"])
