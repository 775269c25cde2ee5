"""Branching on a real model: a branch continues from exactly the chosen token; branch records link into trees."""

from __future__ import annotations

import pytest
import torch

from playground.domain.text import GenerationRequest
from playground.engine.generate import generate
from playground.store.records import Run, run_from_result, token_events
from playground.tasks.branching import branch_of, fork_from, label, node_of, root_of, tree_runs, with_node

GREEDY = {"max_new_tokens": 12, "temperature": 0.7, "top_p": 1.0, "top_k": 0, "repetition_penalty": 1.0,
          "stop": (), "seed": 3, "n": 2}


def plain(text: str) -> bool:
    """One whole ASCII character or more: text that reads back as the same byte tokens."""
    return bool(text) and text.isascii()


def root_run(tm, source: str, prompt: str) -> Run:
    request = GenerationRequest(prompt=prompt, source=source, temperature=0, max_new_tokens=12)
    return with_node(run_from_result(request, generate(tm, request), "done"))


def branch(tm, parent: Run, at: int, choice: int = 1, ascii_only: bool = False):
    events = token_events(parent)
    clicked = events[at]
    alternative = next(a for a in clicked.top[choice:] if plain(a.text)) if ascii_only else clicked.top[choice]
    # (ascii_only: real models' alternatives are whole words; the tiny model's are any byte)
    fork = fork_from(parent, events, clicked, alternative)
    request = fork.request(GREEDY, greedy=True)
    result = generate(tm, request)
    return fork, request, result, fork.record(request, result, "done")


def check_branch(tm, parent: Run, at: int, exact_ids: bool) -> None:
    """Forks are made in text (a request is text): the branch is the parent's text up to the token, the
    alternative, and the model's continuation of exactly that text. Where that text reads back as the same tokens
    (real text on real models; ASCII on the byte-level tiny model, which emits any byte), the model sees exactly
    the parent's tokens and the chosen one."""
    fork, request, result, record = branch(tm, parent, at, ascii_only=exact_ids)
    parent_tokens = parent.outputs["completions"][0]["tokens"]
    new = result.first
    prefix = "".join(t["text"] for t in parent_tokens[:at])
    assert request.text == parent.inputs["source"] + parent.inputs["prompt"] + prefix + fork.alternative.text
    assert request.temperature == 0 and request.n == 1 and request.seed == 3
    read_ids = tm.tokenizer(request.text)["input_ids"]
    prompt_ids = tm.tokenizer(parent.inputs["source"] + parent.inputs["prompt"])["input_ids"]
    if exact_ids:
        assert read_ids == prompt_ids + [t["id"] for t in parent_tokens[:at]] + [fork.alternative.token_id]
    # the new tokens continue that text: their logprobs are those of one forward pass over it and them
    new_ids = [t.token_id for t in new.tokens]
    if tm.fast is None:  # the fast path's quantized logprobs differ from fp32 by design
        with torch.inference_mode():
            logprobs = torch.log_softmax(tm.model(torch.tensor([read_ids + new_ids])).logits[0].float(), dim=-1)
        for i, tok in enumerate(new.tokens):
            assert tok.logprob == pytest.approx(float(logprobs[len(read_ids) - 1 + i, tok.token_id]), abs=1e-3)
    # the branch's text: prefix + alternative + new tokens; its tokens likewise, numbered in order
    completion = record.outputs["completions"][0]
    assert completion["text"] == prefix + fork.alternative.text + new.text
    assert [t["id"] for t in completion["tokens"]] == ([t["id"] for t in parent_tokens[:at]]
                                                        + [fork.alternative.token_id] + new_ids)
    assert completion["tokens"][at]["logprob"] == fork.alternative.logprob
    assert completion["tokens"][at]["top"] == parent_tokens[at]["top"]  # its alternatives stay on hover
    assert [e.index for e in token_events(record)] == list(range(len(completion["tokens"])))
    assert record.inputs["prompt"] == parent.inputs["prompt"] and branch_of(record)["at"] == at


def test_a_branch_is_the_prefix_the_alternative_and_the_models_continuation(tiny_model):
    check_branch(tiny_model, root_run(tiny_model, "The quick ", "brown fox"), 4, exact_ids=False)


def test_a_branch_continues_from_exactly_the_chosen_token(tiny_model):
    parent = root_run(tiny_model, "The quick ", "brown fox")
    texts = [t["text"] for t in parent.outputs["completions"][0]["tokens"]]
    ascii_prefix = next((i for i, t in enumerate(texts) if not plain(t)), len(texts))
    check_branch(tiny_model, parent, min(ascii_prefix, 4), exact_ids=True)


@pytest.mark.embedded
def test_a_branch_on_the_embedded_model_continues_from_exactly_the_chosen_token(embedded_model):
    parent = root_run(embedded_model, "Country: France\nCapital: Paris\n\n", "Country: Italy\nCapital:")
    assert parent.outputs["completions"][0]["text"].startswith(" Rome")
    check_branch(embedded_model, parent, 3, exact_ids=True)


def test_branch_records_link_into_a_tree(tiny_model):
    root = root_run(tiny_model, "", "abc")
    _, _, _, first = branch(tiny_model, root, 2)
    _, _, _, second = branch(tiny_model, first, 5)  # a branch of a branch
    other = root_run(tiny_model, "", "xyz")
    saved = [Run(**{**r.__dict__, "id": i}) for i, r in enumerate([root, first, other, second], start=1)]
    assert root_of(second) == node_of(root) and branch_of(second)["parent"] == node_of(first)
    assert [node_of(r) for r in tree_runs(saved, node_of(root))] == [node_of(root), node_of(first), node_of(second)]
    assert tree_runs(saved, node_of(other)) == [saved[2]]
    assert label(first).startswith("@2 ") and label(root) == " ".join(root.outputs["completions"][0]["text"].split())
    # a run saved without a node id (by the CLI, or before branches) is node run-<id>
    old = Run(mode="prompt", model_id="m", id=42, outputs={"completions": []})
    assert node_of(old) == "run-42" and root_of(old) == "run-42"
