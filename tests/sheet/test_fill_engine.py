"""SheetFiller on a tiny random llama: batched prefix-sharing fill agrees with one cell at a time, confidences
are probabilities, answers come back in order, and Stop stops."""

from __future__ import annotations

import math

import pytest

from playground.domain.jobs import Cancel
from playground.domain.text import GenerationRequest
from playground.engine.fill import SheetFiller
from playground.engine.generate import generate
from playground.tasks.sheet import Sheet, fill_prompts
from tests.sheet.conftest import capitals


def wide_sheet() -> Sheet:
    """Three target shapes (two columns blank in some rows), queries of different lengths."""
    return Sheet(["Country", "Capital", "Continent"],
                 [["France", "Paris", "Europe"], ["Japan", "Tokyo", "Asia"], ["Kenya", "Nairobi", "Africa"],
                  ["Italy", "", ""], ["Papua New Guinea", "", "Oceania"], ["Chad", "", ""], ["Peru", "Lima", ""]])


def test_batched_prefix_sharing_matches_one_cell_at_a_time(tiny512):
    prompts = fill_prompts(wide_sheet())
    batched = SheetFiller(tiny512, batch_size=8, max_new_tokens=6).fill(prompts).answers
    single = SheetFiller(tiny512, batch_size=1, max_new_tokens=6).fill(prompts).answers
    assert [a.raw for a in batched] == [a.raw for a in single]
    for a, b in zip(batched, single, strict=True):
        assert a.confidence == pytest.approx(b.confidence, rel=1e-3, abs=1e-9)
    # ... and with the plain generation loop over the whole prompt text (no cache sharing at all).
    for prompt, answer in zip(prompts, batched, strict=True):
        req = GenerationRequest(prompt=prompt.text, temperature=0, max_new_tokens=6, stop=("\n",))
        assert generate(tiny512, req).first.text.strip() == answer.raw


def test_confidence_is_the_product_of_the_answer_token_probabilities(tiny512):
    result = SheetFiller(tiny512, max_new_tokens=5).fill(fill_prompts(capitals(empty=3)))
    assert len(result.answers) == 3 and not result.cancelled
    for a in result.answers:
        assert 0.0 <= a.confidence <= 1.0
        if a.value:
            assert a.confidence == pytest.approx(math.prod(t.probability for t in a.tokens), rel=1e-6)
            # The first alternative is the greedy path cut at its least sure token: a product of fewer factors.
            assert a.top[0].probability >= a.confidence * (1 - 1e-6)
        assert all(0 <= g.probability <= 1 for g in a.top)
        assert list(a.top) == sorted(a.top, key=lambda g: -g.probability)


def test_answers_arrive_once_each_and_return_in_sheet_order(tiny512):
    prompts = fill_prompts(capitals(empty=8))
    seen = []
    result = SheetFiller(tiny512, batch_size=3, max_new_tokens=4).fill(prompts, seen.append)
    assert sorted(a.index for a in seen) == list(range(len(prompts)))
    assert [(a.row, a.column) for a in result.answers] == [(p.row, p.column) for p in prompts]
    assert [a.row for a in result.answers] == sorted(a.row for a in result.answers)
    # Batches run in order: every answer of batch n arrives before any of batch n + 1.
    assert [a.index // 3 for a in seen] == sorted(a.index // 3 for a in seen)


def test_stop_keeps_the_cells_already_filled(tiny512):
    prompts = fill_prompts(capitals(empty=8))
    cancel = Cancel()
    seen = []

    def on_cell(answer) -> None:
        seen.append(answer)
        if len(seen) == 2:
            cancel.set()

    result = SheetFiller(tiny512, batch_size=2, max_new_tokens=4).fill(prompts, on_cell, cancel)
    assert result.cancelled
    done = [a for a in result.answers if a is not None]
    assert len(done) == len(seen) == 2 and result.answers[-1] is None


def test_a_short_context_drops_the_oldest_examples(tiny_model):
    # The shared tiny model reads 96 tokens: twelve examples cannot fit, the newest few are kept.
    [prompt] = fill_prompts(capitals(empty=1), max_examples=12)
    assert len(prompt.text) > tiny_model.context_length
    [answer] = SheetFiller(tiny_model, max_new_tokens=4).fill([prompt]).answers
    assert 0.0 <= answer.confidence <= 1.0


@pytest.mark.parametrize("precision", ["int4", "fp32"])
def test_fill_on_the_fast_path_batches_like_one_cell_at_a_time_and_says_so(tiny512_dir, precision):
    """The Precision setting reaches the sheet: cells decode together through the runner's slots (the fused C++
    step for int4, B rows per call), with the same greedy answers as one cell at a time and as the plain loop."""
    from playground.engine.text import load_text_model

    tm = load_text_model("tiny-512", tiny512_dir, device="cpu", dtype="float32", precision=precision)
    assert tm.fast is not None
    steps = []
    real_step = tm.fast.step
    tm.fast.step = lambda tokens, slots: steps.append(len(slots)) or real_step(tokens, slots)
    prompts = fill_prompts(wide_sheet())
    batched = SheetFiller(tm, batch_size=8, max_new_tokens=6).fill(prompts)
    assert max(steps) > 1  # several cells per decode step
    single = SheetFiller(tm, batch_size=1, max_new_tokens=6).fill(prompts)
    assert [a.raw for a in batched.answers] == [a.raw for a in single.answers]
    for a, b in zip(batched.answers, single.answers, strict=True):
        assert a.confidence == pytest.approx(b.confidence, rel=1e-3, abs=1e-9)
    path = "fused" if precision == "int4" else "python"
    assert batched.engine == f"{precision} · {path}" and tm.path == path
    for prompt, answer in zip(prompts, batched.answers, strict=True):
        req = GenerationRequest(prompt=prompt.text, temperature=0, max_new_tokens=6, stop=("\n",))
        assert generate(tm, req).first.text.strip() == answer.raw


def test_a_model_whose_scores_are_nan_stops_the_fill_with_a_message(tiny512_dir, tmp_path):
    """A NaN weight makes every score NaN: greedy filling had written the NaN's token into every cell; it now stops
    with BrokenOutput (the sheet shows its sentence), as generation does."""
    import shutil

    from safetensors.torch import load_file, save_file

    from playground.engine.text import load_text_model
    from playground.errors import BrokenOutput

    folder = shutil.copytree(tiny512_dir, tmp_path / "nan")
    weights = load_file(str(folder / "model.safetensors"))
    weights[next(k for k in weights if "mlp.down_proj" in k)][0, 0] = float("nan")
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    tm = load_text_model("nan", folder, device="cpu", dtype="float32")
    with pytest.raises(BrokenOutput, match="not numbers"):
        SheetFiller(tm, max_new_tokens=4).fill(fill_prompts(capitals(empty=2)))
