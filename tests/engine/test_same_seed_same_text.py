"""Same seed + same settings => same text, whatever ran before: a fresh prefill and a reused prefix give the same
logits bit for bit (issue 16: a seeded Compare column gave another text after a relaunch, its second token's
logprob -0.1065 vs -0.1010, because a prefix cached by an earlier prompt had been computed in other chunks)."""

from __future__ import annotations

import pytest
import torch

from playground.domain.text import GenerationRequest
from playground.engine.fast.chunks import prefill_chunks
from playground.engine.generate import generate
from playground.engine.text import load_text_model
from tests.tiny import WIDE, build_tiny_llama

SOURCE = "Country: France\nCapital: Paris\n\nCountry: Japan\nCapital: Tokyo\n\n"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("tiny128"), context=600, **WIDE)


def load(folder, precision="int8"):
    tm = load_text_model("tiny128", folder, device="cpu", dtype="float32", precision=precision)
    assert tm.fast is not None
    return tm


def outcome(tm, prompt: str, source: str = SOURCE, n: int = 1) -> list[list[tuple[int, float]]]:
    """Every completion's (token id, logprob) pairs: the text and the numbers behind it."""
    req = GenerationRequest(source=source, prompt=prompt, temperature=1.0, seed=4, max_new_tokens=24, n=n)
    return [[(t.token_id, t.logprob) for t in c.tokens] for c in generate(tm, req).completions]


def test_prefill_chunks_depend_on_the_prompt_alone():
    assert prefill_chunks(10) == [(0, 10)]
    assert prefill_chunks(10, (4,)) == [(0, 4), (4, 10)]
    assert prefill_chunks(10, (0, 10, 12)) == [(0, 10)]  # checkpoints outside the prompt change nothing
    assert prefill_chunks(1100, (600,)) == [(0, 512), (512, 600), (600, 1024), (1024, 1100)]


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_a_prompt_gives_the_same_numbers_whatever_ran_before(model_dir, precision):
    expected = outcome(load(model_dir, precision), "Country: Italy\nCapital:")
    tm = load(model_dir, precision)
    assert outcome(tm, "Once upon a time") != expected  # another prompt after the same source …
    assert outcome(tm, "Country: Italy\nCapital:") == expected  # … then this one, reusing the source
    assert tm.fast.reused > 0
    assert outcome(tm, "Country: Italy\nCapital:") == expected  # the same request again (all but its end cached)
    outcome(tm, "x" * 300, source="")  # a long prompt makes the cache grow
    assert tm.fast.capacity > 256
    assert outcome(tm, "Country: Italy\nCapital:") == expected
    both = outcome(tm, "Country: Italy\nCapital:", n=2)
    assert both[0] == expected[0]


def test_reused_chunks_are_bit_identical_to_a_fresh_prefill_at_every_split(model_dir):
    """The old rule reused any common prefix: the prompt's tail then ran in a chunk of another size, and its logits
    differed in the last bits. Whatever an earlier prompt shared, the logits must equal a fresh prefill's."""
    tm, fresh = load(model_dir), load(model_dir)
    ids = list(fresh.tokenizer(SOURCE + "Country: Italy\nCapital:")["input_ids"])
    cut = len(fresh.tokenizer(SOURCE)["input_ids"])
    with torch.inference_mode():
        expected = fresh.fast.prefill(0, ids, checkpoints=(cut,))
        for shared in (1, 5, cut - 1, cut, cut + 3, len(ids) - 1, len(ids)):
            tm.fast.prefill(0, ids[:shared] + [7, 8, 9], checkpoints=(cut,))
            tm.fast.step([11], [0])  # decoded positions are never reused
            assert torch.equal(tm.fast.prefill(0, ids, checkpoints=(cut,)), expected), shared
            assert tm.fast.reused == (cut if shared >= cut else 0)
