"""`playground compare` prints one `complete --json` object per column and records the comparison."""

from __future__ import annotations

import argparse
import json

import pytest

from playground.cli import compare as compare_cli
from playground.errors import ParameterError


def _main(argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    compare_cli.add_parser(sub, argparse.ArgumentParser(add_help=False))
    return compare_cli.run(parser.parse_args(argv), lambda e: None)


def test_compare_json_one_column_per_spec(tiny_model_dir, tiny_model_dir_b, capsys):
    a, b = str(tiny_model_dir), str(tiny_model_dir_b)
    code = _main(["compare", "--prompt", "hello", "--max-tokens", "5", "--temperature", "0", "--json",
                  "--column", f"model={a}", "--column", f"model={b}", "--column", f"model={a},max_tokens=2",
                  "--budget-mb", "1"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"columns"} and len(data["columns"]) == 3
    for col in data["columns"]:
        assert set(col) == {"model", "text", "finish_reason", "tokens", "timings"}
        assert set(col["timings"]) == {"load_s", "ttft_s", "tokens_per_s"}
    assert [c["model"] for c in data["columns"]] == [a, b, a]
    assert len(data["columns"][2]["tokens"]) <= 2 < len(data["columns"][0]["tokens"])
    assert data["columns"][0]["text"].startswith(data["columns"][2]["text"])  # greedy: same start


def test_compare_sweep_seeded_and_session(tiny_model_dir, capsys):
    from playground.cli.sessions import open_store

    args = ["compare", "--model", str(tiny_model_dir), "--prompt", "abc", "--max-tokens", "8", "--seed", "3",
            "--sweep", "temperature=0,1.5", "--json", "--session", "cmp"]
    _main(args)
    first = json.loads(capsys.readouterr().out)["columns"]
    _main(args)
    again = json.loads(capsys.readouterr().out)["columns"]
    assert [c["text"] for c in first] == [c["text"] for c in again]  # seeded: reproducible
    store = open_store()
    try:
        info = store.find_by_name("cmp")
        runs = store.runs(info.id)
    finally:
        store.db.dispose()
    assert len(runs) == 2 and runs[0].mode == "compare"
    assert [c["temperature"] for c in runs[0].inputs["columns"]] == [0.0, 1.5]
    assert len(runs[0].outputs["columns"]) == 2


def test_compare_rejects_a_bad_column(tiny_model_dir):
    with pytest.raises(ParameterError, match="unknown column key"):
        _main(["compare", "--prompt", "x", "--column", "modle=x"])
