"""The sheet's JSON state (drafts, run records) round-trips, and reading hostile or old drafts never fails."""

from __future__ import annotations

import json
import math
import random

import pytest

from playground.domain.sheet import AnswerToken, CellAnswer, FillResult, Guess
from playground.store.records import Run
from playground.tasks.sheet import Sheet
from playground.tasks.sheet_eval import EvalPoint
from playground.tasks.sheet_runs import SheetJob, eval_run, fill_run
from playground.tasks.sheet_state import (
    SheetState,
    empty_sheet,
    sheet_from_dict,
    sheet_to_dict,
    state_of_run,
    table_to_dict,
)


def answer(row: int, column: int, value: str, confidence: float) -> CellAnswer:
    tokens = (AnswerToken(" " + value, confidence, (("x", 0.1),)),)
    return CellAnswer(7, row, column, value + " (raw)", value, confidence, tokens,
                      (Guess(value, confidence), Guess("Other", 0.05)))


def full_state() -> SheetState:
    sheet = Sheet(["Country", "Capital", "Note"],
                  [["France", "Paris", ""], ["Peru", "Lima", "x"], ["Chad", "N'Djamena", ""], ["Fiji", "", ""]],
                  {"Capital": "in English"})
    points = [EvalPoint("tiny", 0, 3, 0.0, 1 / 3, None), EvalPoint("tiny", 2, 3, 0.5, 2 / 3, None)]
    return SheetState(sheet, answers={(1, 1): answer(1, 1, "Lima", 0.9), (2, 1): answer(2, 1, "N'Djamena", 0.2)},
                      accepted={(0, 1)}, threshold=0.35, eval_column="Capital", shots="0,2", tolerance=0.1,
                      metric="exact", chart_title="Accuracy on 'Capital'", points=points)


def test_a_draft_round_trips_through_json():
    state = full_state()
    data = json.loads(json.dumps(sheet_to_dict(state)))
    assert data["header"] == ["Country", "Capital", "Note"] and data["rows"][2] == ["Chad", "N'Djamena", ""]
    assert [(m["row"], m["column"], m["mark"]) for m in data["marks"]] == [(0, 1, "accepted"), (1, 1, "model"),
                                                                           (2, 1, "unsure")]
    back = sheet_from_dict(data)
    assert back.sheet == state.sheet and back.accepted == {(0, 1)}
    assert back.answers.keys() == state.answers.keys()
    lima = back.answers[(1, 1)]
    assert (lima.value, lima.raw, lima.confidence) == ("Lima", "Lima (raw)", 0.9)
    assert lima.top == (Guess("Lima", 0.9), Guess("Other", 0.05)) and lima.tokens[0].text == " Lima"
    assert (back.threshold, back.eval_column, back.shots, back.tolerance, back.metric) == (0.35, "Capital", "0,2",
                                                                                          0.1, "exact")
    assert back.chart_title == state.chart_title
    assert [(p.k, p.n, p.normalised) for p in back.points] == [(0, 3, 0.3333), (2, 3, 0.6667)]


def test_an_empty_or_unreadable_draft_is_the_default_empty_sheet():
    for data in ({}, None, [], "sheet", 3, {"header": []}, {"header": "Country"}, {"rows": [["a"]]}):
        state = sheet_from_dict(data)
        assert state.sheet == empty_sheet() and not state.answers and not state.points
        assert state.threshold == 0.5


def test_a_malformed_draft_keeps_what_it_can():
    data = {"header": ["A", "", "A", 7, None], "rows": [["1", 2, None, ["x"], "5", "extra"], "not a row", ["only"]],
            "instructions": {"A": " short ", "B": "not a column", "A (3)": 5},
            "marks": [{"row": 0, "column": 0, "mark": "model", "confidence": 2.5, "top": [{"text": 1}, "x"]},
                      {"row": 9, "column": 0, "mark": "model"}, {"row": True, "column": 0, "mark": "model"},
                      {"row": 2, "column": 1, "mark": "accepted"}, {"row": 1, "column": 1, "mark": "bogus"},
                      {"row": 0, "column": 4, "mark": "unsure", "confidence": float("nan")}, "junk"],
            "threshold": "high", "eval": {"shots": 3, "metric": "vibes", "tolerance": -1},
            "chart": {"points": [{"model": "m", "k": 1, "n": 2, "exact": 0.5, "normalised": 9, "numeric": "x"},
                                 {"model": "m", "k": -1, "n": 2, "exact": 0, "normalised": 0}, {"k": 1}]}}
    state = sheet_from_dict(data)
    assert state.sheet.columns == ["A", "Column 2", "A (2)", "7", "Column 5"]
    assert state.sheet.rows == [["1", "2", "", "", "5"], [""] * 5, ["only", "", "", "", ""]]
    assert state.sheet.instructions == {"A": "short"}
    assert set(state.answers) == {(0, 0), (0, 4)} and state.accepted == {(2, 1)}
    assert state.answers[(0, 0)].confidence == 1.0 and state.answers[(0, 0)].value == "1"
    assert state.answers[(0, 4)].confidence == 0.0
    assert state.threshold == 0.5 and state.shots == "3" and state.metric == "normalised" and state.tolerance == 0
    assert state.points == [EvalPoint("m", 1, 2, 0.5, 1.0, None)]


def _noise(rng: random.Random, depth: int = 0) -> object:
    choices = [None, True, -1, 0, 3, 10**30, 1.5, float("inf"), float("nan"), "", "x", "Capital", "model",
               "accepted", "unsure"]
    if depth < 3:
        choices += ["list", "dict"]
    pick = rng.choice(choices)
    if pick == "list":
        return [_noise(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if pick == "dict":
        keys = ["header", "rows", "marks", "row", "column", "mark", "confidence", "top", "tokens", "text",
                "probability", "value", "threshold", "chart", "points", "model", "k", "n", "exact", "normalised",
                "eval", "shots", "instructions", "kind", "sheet", "cells"]
        return {rng.choice(keys): _noise(rng, depth + 1) for _ in range(rng.randint(0, 6))}
    return pick


def test_random_hostile_drafts_and_runs_never_raise():
    rng = random.Random(1)
    base = sheet_to_dict(full_state())
    for _ in range(1500):
        data = _noise(rng)
        if rng.random() < 0.5:  # a real draft with one field replaced by noise
            data = {**base, rng.choice(list(base)): _noise(rng)}
        state = sheet_from_dict(data)
        width = len(state.sheet.columns)
        assert width >= 1 and all(len(r) == width for r in state.sheet.rows)
        assert all(0 <= r < len(state.sheet.rows) and 0 <= c < width for r, c in state.answers)
        assert 0 <= state.threshold <= 1 and all(math.isfinite(a.confidence) for a in state.answers.values())
        json.dumps(sheet_to_dict(state), allow_nan=False)  # what comes back can be saved again
        run = Run("sheet", "m", params=_noise(rng), inputs={"kind": rng.choice(["fill", "eval"]), "sheet": data},
                  outputs=_noise(rng))
        state_of_run(run)


def test_fill_run_record_and_reopening_it():
    state = full_state()
    table = table_to_dict(state)
    answers = [answer(3, 1, "Suva", 0.42), None]
    run = fill_run(table, "tiny", {"threshold": 0.35, "max_new_tokens": 6}, answers, 1.23456, "cancelled")
    assert run.mode == "sheet" and run.status == "cancelled" and run.timings == {"seconds": 1.235}
    assert run.inputs["kind"] == "fill" and run.inputs["sheet"] == table and "Fill 1 cell" in run.title()
    (cell,) = run.outputs["cells"]
    assert (cell["row"], cell["column"], cell["value"], cell["confidence"]) == (3, 1, "Suva", 0.42)
    assert cell["top"] == [{"text": "Suva", "probability": 0.42}, {"text": "Other", "probability": 0.05}]
    json.dumps({"inputs": run.inputs, "outputs": run.outputs}, allow_nan=False)

    shown = state_of_run(run)
    assert shown.sheet.rows[3] == ["Fiji", "Suva", ""] and shown.answers[(3, 1)].confidence == 0.42
    assert shown.answers.keys() == {(1, 1), (2, 1), (3, 1)} and shown.accepted == {(0, 1)}
    assert shown.threshold == 0.35 and shown.points == []


def test_eval_run_record_and_reopening_it():
    state = full_state()
    run = eval_run(table_to_dict(state), "tiny", {"shots": [0, 2], "tolerance": 0.2}, "Capital", state.points,
                   3.0, "done")
    assert run.inputs["kind"] == "eval" and run.outputs["column"] == "Capital"
    assert run.outputs["points"][1] == {"model": "tiny", "k": 2, "n": 3, "exact": 0.5, "normalised": 0.6667,
                                        "numeric": None}
    shown = state_of_run(run)
    assert [p.k for p in shown.points] == [0, 2] and shown.eval_column == "Capital" and shown.shots == "0,2"
    assert shown.tolerance == 0.2 and shown.chart_title == "Accuracy on 'Capital'"
    assert shown.sheet == state.sheet


@pytest.mark.parametrize("kind", ["fill", "eval"])
def test_a_job_records_what_it_got_when_it_fails(kind):
    job = SheetJob(kind, "t", "tiny", table_to_dict(full_state()), {"shots": [0]}, total=2)
    job.answers.append(answer(3, 1, "Suva", 0.5))
    run = job.failed("out of memory")
    assert run.status == "failed" and run.error == "out of memory" and run.inputs["kind"] == kind
    if kind == "fill":
        assert [c["value"] for c in run.outputs["cells"]] == ["Suva"]  # the cells it filled before failing
    else:
        assert run.outputs == {"column": "", "points": []}
    done = job.finished(FillResult("tiny", (None, None), cancelled=True, seconds=0.5, prompt_tokens=0))
    assert done.status == "cancelled" and done.timings == {"seconds": 0.5}
