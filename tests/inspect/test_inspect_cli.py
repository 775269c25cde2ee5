"""``playground inspect`` and ``playground probe``: their JSON shapes, plain output and errors, on a tiny model; the
probe's records and CSV."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
import torch

from playground.cli.main import main
from playground.domain.inspect import ProbeRow
from playground.errors import ParameterError
from playground.tasks.probe import (
    ProbeRequest,
    parse_continuations,
    parse_values,
    probe_csv,
    probe_run,
    rows_of,
    run_probe,
    shares,
)

PROMPT = "Country: Italy\nCapital:"


def test_inspect_json_shape(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "src.txt").write_text("ab\n")
    code = main(["inspect", "--model", str(tiny_model_dir), "--source", str(tmp_path / "src.txt"), "--prompt",
                 PROMPT, "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"model", "tokens", "attention", "lens"}
    t = len("ab\n" + PROMPT)
    assert "".join(data["tokens"]) == "ab\n" + PROMPT and len(data["tokens"]) == t
    att = data["attention"]
    assert set(att) == {"layers", "heads", "weights"} and (att["layers"], att["heads"]) == (2, 4)
    weights = np.array(att["weights"])
    assert weights.shape == (2, 4, t, t)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.triu(weights, k=1) == 0)
    assert len(data["lens"]) == t  # one list per position
    for position in data["lens"]:
        assert [e["layer"] for e in position] == [0, 1, 2]
        assert all(set(e) == {"layer", "top"} and len(e["top"]) == 5 for e in position)
        assert all(set(p) == {"text", "prob"} for e in position for p in e["top"])


def test_inspect_plain_output_and_errors(tiny_model_dir, capsys):
    assert main(["inspect", "--model", str(tiny_model_dir), "--prompt", "abc", "--new-tokens", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{tiny_model_dir} · 5 tokens · 2 layers × 4 heads"
    assert len(out) == 1 + 5
    assert main(["inspect", "--model", str(tiny_model_dir), "--prompt", ""]) == 2
    assert "inspect" in capsys.readouterr().err
    assert main(["inspect", "--model", "remote:lab/x", "--prompt", "a"]) == 1
    assert "remote server" in capsys.readouterr().err


def test_probe_json_equals_scoring_the_full_strings(tiny_model_dir, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    code = main(["probe", "--model", str(tiny_model_dir), "--template", "The {job} was a", "--values",
                 "nurse, doctor", "--continuations", " man, woman", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    rows = data["rows"]
    assert set(data) == {"rows"} and all(set(r) == {"value", "continuation", "logprob"} for r in rows)
    assert [(r["value"], r["continuation"]) for r in rows] == [("nurse", " man"), ("nurse", " woman"),
                                                               ("doctor", " man"), ("doctor", " woman")]
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    for r in rows:
        text = f"The {r['value']} was a"
        ids = tok(text + r["continuation"])["input_ids"]
        with torch.inference_mode():
            logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0], dim=-1)
        start = len(tok(text)["input_ids"])
        assert r["logprob"] == pytest.approx(sum(float(logprobs[p - 1, ids[p]]) for p in range(start, len(ids))),
                                             abs=1e-4)


def test_probe_errors_name_the_problem(tiny_model_dir, capsys):
    args = ["probe", "--model", str(tiny_model_dir), "--values", "a", "--continuations", " x"]
    assert main([*args, "--template", "no slot here"]) == 2
    assert "exactly one slot" in capsys.readouterr().err
    assert main([*args, "--template", "{a} and {b}"]) == 2
    assert "2 different slots" in capsys.readouterr().err


def test_probe_request_parsing_rows_csv_and_record():
    assert parse_values(" nurse, doctor ,, ") == ("nurse", "doctor")
    assert parse_continuations(" man, woman,") == (" man", " woman")
    request = ProbeRequest("The {o} saw the {o}", ("cat",), (" x",))
    assert request.text_for("cat") == "The cat saw the cat"
    with pytest.raises(ParameterError):
        ProbeRequest("The {o}", (), (" x",)).validate()
    seen = []

    def scorer(pairs):
        seen.extend(pairs)
        return [[-1.0, -0.5] if c == " man" else [-2.0] for _, c in pairs]

    rows = run_probe(ProbeRequest("The {o} was a", ("nurse", "pilot"), (" man", " woman")), scorer)
    assert seen[0] == ("The nurse was a", " man") and len(seen) == 4
    assert rows[0] == ProbeRow("nurse", " man", -1.5)  # a continuation's logprob is the sum over its tokens
    s = shares(rows)
    assert s[0] + s[1] == pytest.approx(1.0) and s[0] == pytest.approx(math.exp(-1.5) / (math.exp(-1.5) + math.exp(-2)))
    table = list(csv.reader(io.StringIO(probe_csv(rows))))
    assert table[0] == ["value", "continuation", "logprob", "probability", "share"]
    assert table[1][:3] == ["nurse", " man", "-1.500000"] and len(table) == 5
    record = probe_run(ProbeRequest("The {o} was a", ("nurse", "pilot"), (" man", " woman")), rows, "m", 0.5)
    assert record.mode == "inspect" and record.inputs["kind"] == "probe" and rows_of(record) == rows
    assert record.title() == "Probe: The {o} was a"


def test_a_stopped_probe_keeps_the_rows_it_scored():
    from playground.domain.jobs import Cancel

    cancel = Cancel()
    calls = []

    def scorer(pairs):
        calls.append(len(pairs))
        cancel.set()  # the user presses Stop during the first chunk
        return [[-1.0] for _ in pairs]

    request = ProbeRequest("The {o} was a", tuple(f"v{i}" for i in range(20)), (" a", " b"))
    rows = run_probe(request, scorer, cancel, chunk=8)
    assert calls == [8] and len(rows) == 8 and rows[7] == ProbeRow("v3", " b", -1.0)
