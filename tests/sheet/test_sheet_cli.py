"""``playground sheet fill|eval`` through the same argparse wiring cli.py uses, on the tiny model."""

from __future__ import annotations

import argparse
import csv
import json

import pytest

from playground.cli import main as cli
from playground.cli import sheet as sheet_cli
from playground.errors import KnownError
from playground.tasks.sheet import read_csv, to_csv
from tests.sheet.conftest import capitals


def run(argv: list[str]) -> int:
    common = cli._common()
    parser = argparse.ArgumentParser(parents=[common])
    sub = parser.add_subparsers(dest="command")
    sheet_cli.add_parser(sub, common)
    args = parser.parse_args(argv)
    assert args.command == "sheet"
    return sheet_cli.run(args)


@pytest.fixture
def capitals_csv(tmp_path):
    path = tmp_path / "capitals.csv"
    path.write_text(to_csv(capitals(empty=3)), encoding="utf-8")
    return path


def test_fill_json_lists_every_empty_cell(capitals_csv, tiny512_dir, capsys):
    assert run(["sheet", "fill", str(capitals_csv), "--model", str(tiny512_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(c["row"], c["column"]) for c in out["cells"]] == [(9, "Capital"), (10, "Capital"), (11, "Capital")]
    for cell in out["cells"]:
        assert set(cell) == {"row", "column", "value", "confidence", "top"}
        assert 0 <= cell["confidence"] <= 1 and cell["top"] and {"text", "probability"} <= cell["top"][0].keys()


def test_fill_out_writes_the_csv_and_threshold_leaves_unsure_cells_empty(capitals_csv, tiny512_dir, tmp_path,
                                                                         capsys):
    out = tmp_path / "filled.csv"
    assert run(["sheet", "fill", str(capitals_csv), "--model", str(tiny512_dir), "--out", str(out)]) == 0
    filled = read_csv(out).sheet
    assert filled.columns == ["Country", "Capital"] and len(filled.rows) == 12
    assert filled.rows[:9] == capitals(empty=3).rows[:9]  # typed cells untouched
    # A random model is never sure: with threshold 1 nothing is written.
    assert run(["sheet", "fill", str(capitals_csv), "--model", str(tiny512_dir), "--out", str(out),
                "--threshold", "1"]) == 0
    assert read_csv(out).sheet.rows == capitals(empty=3).rows
    assert "12" not in capsys.readouterr().out  # --out: nothing on stdout


def test_eval_prints_accuracy_per_k(tmp_path, tiny512_dir, capsys):
    path = tmp_path / "full.csv"
    path.write_text(to_csv(capitals(empty=0)), encoding="utf-8")
    assert run(["sheet", "eval", str(path), "--column", "Capital", "--shots", "0,1,2", "--queries", "4",
                "--model", str(tiny512_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["column"] == "Capital" and [p["k"] for p in out["points"]] == [0, 1, 2]
    assert all(p["n"] == 4 and 0 <= p["exact"] <= p["normalised"] <= 1 for p in out["points"])
    assert run(["sheet", "eval", str(path), "--column", "Capital", "--shots", "1", "--queries", "2",
                "--model", str(tiny512_dir)]) == 0
    table = capsys.readouterr().out
    assert "accuracy by number of example rows" in table and "normalised" in table


def test_bad_input_is_a_known_error(tmp_path, capsys):
    ragged = tmp_path / "ragged.csv"
    with ragged.open("w", newline="") as f:
        csv.writer(f).writerows([["A", "A"], ["1"], ["2", "", "4"]])
    with pytest.raises(KnownError, match="complete row"):
        run(["sheet", "fill", str(ragged)])  # repaired (with warnings) but no complete row to learn from
    assert "warning" in capsys.readouterr().err
    with pytest.raises(KnownError, match="Cannot read"):
        run(["sheet", "fill", str(tmp_path / "missing.csv")])
    with pytest.raises(KnownError, match="No column named"):
        run(["sheet", "eval", str(ragged), "--column", "Nope"])
    with pytest.raises(KnownError, match="COLUMN=TEXT"):
        run(["sheet", "fill", str(ragged), "--instruction", "Nope"])
