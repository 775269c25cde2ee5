"""``playground sessions`` and ``complete --session``."""

from __future__ import annotations

import json

from playground.cli.main import main


def test_complete_records_runs_in_a_named_session_and_lists_it(tiny_model_dir, tmp_path, capsys):
    for prompt in ("first", "second"):
        assert main(["complete", "--model", str(tiny_model_dir), "--prompt", prompt, "--temperature", "0",
                     "--max-tokens", "4", "--session", "Night shift", "--json"]) == 0
    texts = [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()]
    assert main(["complete", "--model", str(tmp_path / "gone"), "--prompt", "x", "--session", "Night shift"]) == 1
    capsys.readouterr()
    assert main(["sessions", "list", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["name"] == "Night shift" and listed["runs"] == 3

    out = tmp_path / "night.json"
    assert main(["sessions", "export", str(listed["id"]), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [r["inputs"]["prompt"] for r in data["runs"]] == ["first", "second", "x"]
    assert [r["outputs"]["completions"][0]["text"] for r in data["runs"][:2]] == texts
    assert data["runs"][2]["status"] == "failed" and "Unknown model" in data["runs"][2]["error"]

    assert main(["sessions", "export", str(listed["id"]), "--out", str(tmp_path / "night.md")]) == 0
    assert (tmp_path / "night.md").read_text().count("\n## ") == 3  # every run, the failed one too
    capsys.readouterr()
    assert main(["sessions", "import", str(out)]) == 0
    assert "imported 3 runs" in capsys.readouterr().out
    main(["sessions", "list", "--json"])
    assert [s["name"] for s in json.loads(capsys.readouterr().out)] == ["Night shift", "Night shift"]


def test_session_errors_are_one_line(tmp_path, capsys):
    assert main(["sessions", "export", "42", "--out", str(tmp_path / "x.json")]) == 1
    assert capsys.readouterr().err == "error: Session 42 not found\n"
    (tmp_path / "bad.json").write_text("{")
    assert main(["sessions", "import", str(tmp_path / "bad.json")]) == 1
    assert capsys.readouterr().err.startswith("error: bad.json is not valid JSON")
