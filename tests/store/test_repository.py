"""Sessions and runs through the repository, as the app and CLI use them."""

from __future__ import annotations

import time

import pytest

from playground.domain.text import GenerationRequest
from playground.engine.generate import generate
from playground.store.records import Run, run_from_result, token_events
from playground.store.repository import SessionNotFound


def prompt_run(prompt: str, text: str = " out", status: str = "done") -> Run:
    return Run(mode="prompt", model_id="m", inputs={"source": "src", "prompt": prompt},
               outputs={"completions": [{"text": text}]}, status=status)


def test_sessions_are_listed_newest_first_with_run_counts(store):
    a = store.create("First")
    time.sleep(0.01)
    b = store.create("Second")
    store.add_run(a.id, prompt_run("p"))  # a run makes a session the most recently updated
    listed = store.list()
    assert [s.name for s in listed] == ["First", "Second"]
    assert [s.run_count for s in listed] == [1, 0]
    assert store.get(b.id).run_count == 0


def test_search_covers_names_drafts_and_run_contents(store):
    a = store.create("Capitals")
    b = store.create("Quotes")
    store.add_run(a.id, prompt_run("Country: Italy", text=" Rome"))
    store.save_draft(b.id, "prompt", {"source": "grade scope testimonials"})
    assert [s.name for s in store.list("rome")] == ["Capitals"]
    assert [s.name for s in store.list("capit")] == ["Capitals"]
    assert [s.name for s in store.list("TESTIMONIAL")] == ["Quotes"]
    assert store.list("100%") == [] and store.list("_") == []  # LIKE wildcards are literal


def test_rename_duplicate_delete_undo_and_purge(store):
    s = store.create("Draft")
    store.add_run(s.id, prompt_run("one"))
    store.save_draft(s.id, "prompt", {"prompt": "typing"})
    assert store.rename(s.id, "  Renamed \n session ").name == "Renamed session"
    copy = store.duplicate(s.id)
    assert copy.name == "Renamed session (copy)" and copy.run_count == 1
    assert store.draft(copy.id) == {"prompt": {"prompt": "typing"}}
    store.delete(s.id)
    assert [x.id for x in store.list()] == [copy.id]
    with pytest.raises(SessionNotFound):
        store.get(s.id)
    store.restore(s.id)  # undo
    assert {x.id for x in store.list()} == {s.id, copy.id}
    store.delete(s.id)
    assert store.purge_deleted() == 1
    with pytest.raises(SessionNotFound):
        store.restore(s.id)
    assert store.runs(copy.id)[0].inputs["prompt"] == "one"  # the copy's runs are its own


def test_runs_keep_every_field_and_order(store):
    s = store.create("Runs")
    saved = [store.add_run(s.id, prompt_run(f"p{i}", status=st))
             for i, st in enumerate(["done", "cancelled", "failed"])]
    runs = store.runs(s.id)
    assert [r.id for r in runs] == [r.id for r in saved]
    assert [r.status for r in runs] == ["done", "cancelled", "failed"]
    assert store.last_run(s.id, "prompt").inputs["prompt"] == "p2"
    assert store.last_run(s.id, "image") is None
    with pytest.raises(ValueError):
        store.add_run(s.id, prompt_run("x", status="exploded"))


def test_a_generation_result_round_trips_with_its_token_probabilities(store, tiny_model):
    req = GenerationRequest(prompt="hello", temperature=0.9, max_new_tokens=10, seed=4, n=2)
    result = generate(tiny_model, req)
    s = store.create("Tokens")
    store.add_run(s.id, run_from_result(req, result, "done"))
    run = store.runs(s.id)[0]
    assert run.params["seed"] == 4 and run.params["n"] == 2 and run.model_id == "tiny-llama"
    assert [c["text"] for c in run.outputs["completions"]] == [c.text for c in result.completions]
    restored = token_events(run)
    original = [t for c in result.completions for t in c.tokens]
    assert restored == original  # text, ids, logprobs and the top-5 alternatives


def test_adding_a_run_to_a_missing_session_fails_clearly(store):
    with pytest.raises(SessionNotFound):
        store.add_run(999, prompt_run("x"))
