"""Few-shot vs LoRA on a table (playground.tasks.sheet_transfer): which rows train and which are asked, the three
curves on a tiny model, stopping, and the run record as sessions keep, reopen and export it."""

from __future__ import annotations

import pytest

from playground.domain.jobs import Cancel
from playground.engine.lora import LoraSettings
from playground.errors import KnownError
from playground.store.db import open_database
from playground.store.markdown import export_markdown
from playground.store.repository import SessionStore
from playground.tasks.sheet import cell_prompt
from playground.tasks.sheet_state import SheetState, state_of_run, table_to_dict
from playground.tasks.sheet_transfer import LABELS, METHODS, plan_transfer, run_transfer, transfer_run
from tests.sheet.conftest import codes, kinds

TRAIN = LoraSettings(epochs=30, learning_rate=2e-2, rank=16)


def test_the_plan_keeps_held_out_rows_apart_and_nests_the_training_rows():
    sheet = kinds(12)
    sheet.rows[3][1] = ""  # an incomplete row is neither trained on nor asked
    plan = plan_transfer(sheet, "kind", (0, 1, 2, 4, 8, 16), seed=3)
    assert plan.shots == (0, 1, 2, 4, 8) and len(plan.notes) == 1 and "k = 16" in plan.notes[0]
    assert len(plan.queries) == 3 and 3 not in plan.pool + plan.queries  # 11 complete rows - 8 for the largest k
    assert not set(plan.queries) & set(plan.pool)
    few = plan.eval_plan(plan.shots, with_examples=True)
    for case in few.cases:  # k examples: the first k training rows, never the row asked
        assert case.row in plan.queries
        assert case.prompt == cell_prompt(sheet, case.row, 1, list(plan.pool[:case.k]))
    assert all(not c.prompt.examples for c in plan.eval_plan([4], with_examples=False).cases)
    examples = plan.train_examples(4)
    assert [e.answer for e in examples] == ["paint"] * 4
    assert all(len(e.prompts) == 2 and not e.prompts[0].examples and e.prompts[1].examples for e in examples)
    assert plan_transfer(sheet, "Kind", seed=3).queries == plan.queries  # seeded
    with pytest.raises(KnownError, match="at least 3 complete rows"):
        plan_transfer(kinds(2), "Kind")
    with pytest.raises(KnownError, match="No column"):
        plan_transfer(sheet, "Colour")


def test_three_curves_at_the_same_ks_lora_learns_what_few_shot_cannot(tiny64):
    plan = plan_transfer(kinds(12), "Kind", (0, 1, 2, 4))
    seen: list[list] = []
    phases = []
    result = run_transfer(tiny64, plan, TRAIN, on_progress=phases.append, on_points=seen.append)
    assert not result.cancelled
    assert [(p.method, p.k) for p in result.points] == [(m, k) for m in METHODS for k in (0, 1, 2, 4)]
    assert [p.method for p in seen[0]] == ["few-shot"] * 4  # the few-shot curve first, then per k
    by = {(p.method, p.k): p for p in result.points}
    assert all(p.n == len(plan.queries) == 8 for p in result.points)
    assert by["lora", 0].accuracy == by["lora+few-shot", 0].accuracy == by["few-shot", 0].accuracy
    assert all(by["few-shot", k].train_s == 0 for k in (0, 1, 2, 4)) and by["lora", 0].train_s == 0
    assert all(by["lora", k].train_s == by["lora+few-shot", k].train_s > 0 for k in (1, 2, 4))
    # A random model cannot guess "paint"; trained on a few rows it answers the held-out ones.
    assert max(by["few-shot", k].accuracy for k in (1, 2, 4)) == 0
    assert by["lora", 4].accuracy >= 0.75
    assert {p.phase for p in phases} == {"few-shot", "training", "evaluating"}
    training = [p for p in phases if p.phase == "training"]
    assert training[-1].train.step == training[-1].train.steps and "loss" in training[-1].describe()
    assert set(result.losses) == {1, 2, 4}


def test_stopping_during_a_training_keeps_the_points_so_far_and_the_model(tiny64):
    plan = plan_transfer(codes(8), "Code", (0, 1, 2))
    cancel = Cancel()

    def on_progress(p):
        if p.phase == "training" and p.k == 2 and p.train.step == 2:
            cancel.set()

    before = run_transfer(tiny64, plan, LoraSettings(epochs=1), cancel=Cancel())
    result = run_transfer(tiny64, plan, LoraSettings(epochs=5), on_progress=on_progress, cancel=cancel)
    assert result.cancelled
    assert {(p.method, p.k) for p in result.points} == {("few-shot", 0), ("few-shot", 1), ("few-shot", 2),
                                                         ("lora", 0), ("lora+few-shot", 0), ("lora", 1),
                                                         ("lora+few-shot", 1)}
    assert len(result.losses[2]) == 2
    # Few-shot answers come from the loaded model: the same as before, no adapter left in it.
    again = run_transfer(tiny64, plan, LoraSettings(epochs=1))
    assert [p for p in again.points if p.method == "few-shot"] == [p for p in before.points
                                                                    if p.method == "few-shot"]


def test_the_run_record_reopens_as_three_lines_and_exports_as_a_table(tiny64, data_home):
    plan = plan_transfer(kinds(8), "Kind", (0, 2))
    result = run_transfer(tiny64, plan, LoraSettings(epochs=2))
    table = table_to_dict(SheetState(sheet=kinds(8)))
    run = transfer_run(table, "tiny-64", {"column": "Kind", "shots": [0, 2], "lora": TRAIN.as_dict()}, "Kind",
                       result.points, result.seconds, "done")
    assert run.inputs["kind"] == "transfer" and "Few-shot vs LoRA" in run.title()
    assert {p["method"] for p in run.outputs["points"]} == set(METHODS)
    state = state_of_run(run)
    assert sorted({p.model for p in state.points}) == sorted(LABELS.values())
    assert state.chart_title == "Few-shot vs LoRA on 'Kind'" and state.shots == "0,2"
    db = open_database()
    try:
        store = SessionStore(db)
        session = store.create("Transfer")
        store.add_run(session.id, run)
        text = export_markdown(store, session.id)
    finally:
        db.dispose()
    assert "| method | k | n | exact | normalised | numeric | train s |" in text
    assert "| LoRA 0-shot | 2 |" in text and "| few-shot | 0 |" in text
