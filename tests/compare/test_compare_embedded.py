"""The embedded model compared against itself at temperature 0 and 1, seeded: a re-run reproduces it."""

from __future__ import annotations

import pytest

from playground.runtime.model_pool import ModelPool
from playground.tasks.compare import diff_words
from playground.tasks.compare_run import run_columns


@pytest.mark.embedded
def test_embedded_self_comparison_reruns_identically(embedded_model):
    pool = ModelPool(lambda mid, p: embedded_model, budget_bytes=2**40)  # never evicted: the fixture is shared
    columns = [{"temperature": 0.0}, {"temperature": 1.0, "seed": 11}]
    defaults = {"model": embedded_model.id, "max_new_tokens": 16}
    prompt = "Country: France\nCapital:"
    first = run_columns(pool, columns, defaults, "", prompt)
    again = run_columns(pool, columns, defaults, "", prompt)
    assert first[0].result.first.text == again[0].result.first.text
    assert first[1].result.first.text == again[1].result.first.text  # seeded sampling reproduces too
    assert "Paris" in first[0].result.first.text
    diff = diff_words(first[0].result.first.text, first[1].result.first.text)
    assert 0.0 <= diff.similarity <= 1.0
