"""The sampler draws each token with its probability, never one of probability zero, and keeps exactly the tokens
top-p keeps by the full sort's rule (found among the likeliest few instead of sorting a 262k vocabulary)."""

from __future__ import annotations

import pytest
import torch

from playground.domain.text import GenerationRequest
from playground.engine.sampling import draw, nucleus, pick_token


def test_draws_follow_the_probabilities_and_never_pick_a_zero():
    probs = torch.tensor([0.0, 0.5, 0.0, 0.2, 0.25, 0.05, 0.0])
    gen = torch.Generator().manual_seed(3)
    n = 40_000
    counts = torch.bincount(torch.tensor([draw(probs, gen) for _ in range(n)]), minlength=probs.numel())
    assert counts[probs == 0].sum() == 0
    expected = probs * n
    # chi-square over the four possible tokens, 3 degrees of freedom: 16.3 is its 0.1% point
    chi2 = float((((counts - expected) ** 2)[probs > 0] / expected[probs > 0]).sum())
    assert chi2 < 16.3, (counts.tolist(), chi2)


def test_a_draw_scales_to_the_total_and_the_same_seed_draws_the_same():
    probs = torch.tensor([0.0, 3.0, 0.0, 1.0, 0.0])  # unnormalised, zeros at both ends
    seq = [draw(probs, torch.Generator().manual_seed(s)) for s in range(200)]
    assert set(seq) == {1, 3} and 120 < seq.count(1) < 180
    assert seq == [draw(probs, torch.Generator().manual_seed(s)) for s in range(200)]
    one = torch.zeros(1000)
    one[-1] = 1e-30  # all the mass on the last token, tiny
    assert {draw(one, torch.Generator().manual_seed(s)) for s in range(50)} == {999}


def _nucleus_by_full_sort(probs: torch.Tensor, top_p: float) -> set[int]:
    ordered, order = torch.sort(probs, descending=True)
    keep = (ordered.cumsum(0) - ordered) < top_p
    return set(order[keep].tolist())


@pytest.mark.parametrize("vocab, spread", [(300, 4.0), (5000, 0.05), (262_144, 3.0)])
def test_top_p_keeps_what_the_full_sort_keeps(vocab, spread):
    """Peaked and nearly flat distributions (the flat one needs thousands of tokens for its nucleus, so the
    search widens past its first 64 and 1,024)."""
    gen = torch.Generator().manual_seed(vocab)
    probs = torch.softmax(torch.randn(vocab, generator=gen) * spread, dim=0)
    for top_p in (0.05, 0.5, 0.9, 0.999):
        kept = nucleus(probs, top_p)
        assert set(torch.nonzero(kept).flatten().tolist()) == _nucleus_by_full_sort(probs, top_p), top_p
        assert torch.equal(kept[kept > 0], probs[kept > 0])
    assert len(_nucleus_by_full_sort(probs, 0.9)) > (1024 if vocab == 5000 else 0)


def test_pick_token_samples_only_inside_top_p_and_top_k():
    logits = torch.tensor([4.0, 3.5, 3.0, 1.0, 0.5, 0.0, -1.0, -2.0])
    gen = torch.Generator().manual_seed(0)
    probs = torch.softmax(logits, dim=0)
    allowed_p = _nucleus_by_full_sort(probs, 0.8)
    req = GenerationRequest(prompt="x", temperature=1.0, top_p=0.8)
    picks = {pick_token(logits, req, torch.zeros(0, dtype=torch.long), gen) for _ in range(400)}
    assert picks == allowed_p
    req = GenerationRequest(prompt="x", temperature=1.0, top_k=2)
    assert {pick_token(logits, req, torch.zeros(0, dtype=torch.long), gen) for _ in range(200)} == {0, 1}


@pytest.mark.parametrize("u, expected", [(0.0, 2), (1.0 - 2**-24, 5), (1.0, 5)])
def test_the_extreme_uniform_numbers_still_land_on_tokens_with_mass(monkeypatch, u, expected):
    """u = 0 takes the first token with mass (not the zeros before it), u just below 1 the last one (not the zeros
    after it: u times the total rounded up to the total lands past the running sum's end)."""
    probs = torch.tensor([0.0, 0.0, 0.3, 0.0, 0.3, 0.4, 0.0, 0.0])
    real_rand = torch.rand
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.tensor(u, dtype=torch.float32))
    try:
        assert draw(probs, torch.Generator()) == expected
    finally:
        monkeypatch.setattr(torch, "rand", real_rand)


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_nan_scores_stop_with_a_message_not_a_token(temperature):
    """Logits holding a NaN (corrupt weights, an overflow at reduced precision): greedy decoding had taken the NaN
    as the best token, sampling had failed with torch's own error; both now stop with one clear sentence."""
    from playground.errors import BrokenOutput

    logits = torch.randn(500)
    logits[123] = float("nan")
    req = GenerationRequest(prompt="x", temperature=temperature)
    with pytest.raises(BrokenOutput, match="not numbers"):
        pick_token(logits, req, torch.tensor([], dtype=torch.long), torch.Generator().manual_seed(0))


@pytest.mark.parametrize("n", [262144, 151936, 49152 + 37])
@pytest.mark.parametrize("k", [1, 5, 64])
def test_top_k_by_chunks_equals_torch_topk(n, k):
    """The chunked top-k (a token's alternatives, top-p's first pass) returns torch.topk's values and ids: a
    vocabulary not a multiple of the chunk, masked (-inf) tokens, a NaN (counted largest, as torch does)."""
    from playground.engine.sampling import top_k

    x = torch.randn(n, generator=torch.Generator().manual_seed(n + k))
    x[::7] = float("-inf")
    for scores in (x, torch.where(torch.arange(n) == n // 3, float("nan"), x)):
        values, ids = top_k(scores, k)
        expected_values, expected_ids = torch.topk(scores, k)
        torch.testing.assert_close(values, expected_values, equal_nan=True, rtol=0, atol=0)
        assert ids.tolist() == expected_ids.tolist()
