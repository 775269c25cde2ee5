"""``playground sheet transfer|train`` in their exact shapes, through the real ``playground`` parser, on a tiny model;
the saved adapter is listed and removed through ``playground models``."""

from __future__ import annotations

import json

from playground.cli import main as cli
from playground.tasks.sheet import to_csv
from playground.tasks.sheet_transfer import METHODS
from tests.sheet.conftest import codes


def test_transfer_json_has_exactly_the_documented_shape(tmp_path, tiny64_dir, capsys):
    path = tmp_path / "codes.csv"
    path.write_text(to_csv(codes(8)), encoding="utf-8")
    argv = ["sheet", "transfer", str(path), "--column", "Code", "--shots", "0,1,2,16", "--epochs", "2", "--seed",
            "1", "--model", str(tiny64_dir), "--json"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert set(out) == {"points"}
    assert all(set(p) == {"k", "method", "accuracy", "train_s"} for p in out["points"])
    assert sorted((p["method"], p["k"]) for p in out["points"]) == sorted((m, k) for m in METHODS for k in (0, 1, 2))
    assert all(0 <= p["accuracy"] <= 1 for p in out["points"])
    assert all((p["train_s"] > 0) == (p["method"] != "few-shot" and p["k"] > 0) for p in out["points"])
    assert "k = 16 skipped" in captured.err and "training step" in captured.err and "ETA" in captured.err

    assert cli.main(argv[:-1]) == 0  # the table for people
    text = capsys.readouterr().out
    assert "LoRA + few-shot" in text and "train s" in text


def test_train_saves_an_adapter_the_registry_lists_and_removes(tmp_path, tiny64_dir, capsys):
    path = tmp_path / "codes.csv"
    path.write_text(to_csv(codes(8)), encoding="utf-8")
    assert cli.main(["sheet", "train", str(path), "--column", "Code", "--name", "codes", "--rows", "4",
                     "--epochs", "1", "--model", str(tiny64_dir)]) == 0
    out = capsys.readouterr()
    model_id = f"{tiny64_dir}+codes"
    assert out.out.strip() == model_id and "trained on 4 rows" in out.err
    assert cli.main(["models", "--json"]) == 0
    listed = {m["id"]: m for m in json.loads(capsys.readouterr().out)}
    assert listed[model_id]["source"] == "adapter" and listed[model_id]["size_bytes"] > 0
    # The adapter's id loads like any model: here, in a fill.
    empty = codes(8)
    empty.rows[7][1] = ""
    path.write_text(to_csv(empty), encoding="utf-8")
    assert cli.main(["sheet", "fill", str(path), "--model", model_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cells"][0]["row"] == 7
    assert cli.main(["models", "remove", model_id]) == 0
    assert capsys.readouterr().out.strip() == f"removed {model_id}"
    assert cli.main(["models", "--json"]) == 0
    assert model_id not in {m["id"] for m in json.loads(capsys.readouterr().out)}


def test_bad_input_is_a_clear_message(tmp_path, tiny64_dir, capsys):
    path = tmp_path / "codes.csv"
    path.write_text(to_csv(codes(8)), encoding="utf-8")
    model = ["--model", str(tiny64_dir)]
    assert cli.main(["sheet", "train", str(path), "--column", "Code", "--name", "a b", *model]) == 2
    assert "Adapter name 'a b'" in capsys.readouterr().err
    assert cli.main(["sheet", "transfer", str(path), "--column", "Code", "--epochs", "0", *model]) == 2
    assert "epochs must be 1-1000" in capsys.readouterr().err
    assert cli.main(["sheet", "transfer", str(path), "--column", "Nope", *model]) == 1
    assert "No column named 'Nope'" in capsys.readouterr().err
    assert cli.main(["sheet", "train", str(path), "--column", "Code", "--name", "x", "--rows", "0", *model]) == 1
