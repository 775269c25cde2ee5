"""Turn one position's logits into the next token, and report log-probabilities.

Log-probabilities are those of the model's own distribution (before temperature, top-k/top-p and repetition
penalty), the way the OpenAI API reports them: they say what the model believes, not how we sampled.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from playground.errors import BrokenOutput

if TYPE_CHECKING:
    import torch

    from playground.domain.text import GenerationRequest

NAN_SCORES = ("The model's scores for the next token are not numbers (NaN): its weights may be corrupt, or a "
              "value overflowed at this precision (try Precision fp32)")


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL-style penalty: shrink the logits of tokens already in the context."""
    if penalty == 1.0 or seen.numel() == 0:
        return logits
    import torch

    picked = logits.gather(0, seen)
    picked = torch.where(picked > 0, picked / penalty, picked * penalty)
    return logits.scatter(0, seen, picked)


def apply_penalties(logits: torch.Tensor, counts: torch.Tensor | None, req: GenerationRequest) -> torch.Tensor:
    """OpenAI's penalties and ``logit_bias``: ``logit[j] += bias[j] - frequency * count[j] - presence * (count[j] >
    0)``, where ``count`` is how often token j was generated so far in this completion (the prompt does not
    count, as in OpenAI's and vLLM's definition)."""
    import torch

    if req.logit_bias:
        ids = torch.tensor([t for t, _ in req.logit_bias if t < logits.numel()], dtype=torch.long)
        bias = torch.tensor([b for t, b in req.logit_bias if t < logits.numel()], dtype=logits.dtype)
        logits = logits.index_add(0, ids, bias)
    if counts is not None and (req.presence_penalty or req.frequency_penalty):
        logits = logits - req.frequency_penalty * counts - req.presence_penalty * (counts > 0).to(logits.dtype)
    return logits


class NgramBan:
    """Tokens that would repeat an n-gram already in the generated text (HF's no_repeat_ngram_size, but over
    the completion only, so copying patterns from few-shot examples stays allowed)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._next: dict[tuple[int, ...], set[int]] = {}

    def update(self, generated: list[int]) -> None:
        if self.n and len(generated) >= self.n:
            self._next.setdefault(tuple(generated[-self.n:-1]), set()).add(generated[-1])

    def banned(self, generated: list[int]) -> list[int]:
        if not self.n or len(generated) < self.n - 1:
            return []
        return sorted(self._next.get(tuple(generated[len(generated) - self.n + 1:]), ()))


def pick_token(logits: torch.Tensor, req: GenerationRequest, seen: torch.Tensor,
               generator: torch.Generator, banned: list[int] | None = None, counts: torch.Tensor | None = None,
               allowed: torch.Tensor | None = None) -> int:
    """Sample (or take the argmax when temperature is 0) from fp32 CPU ``logits`` of shape (vocab,). ``counts``:
    generated-token counts (vocab,) for the presence/frequency penalties; ``allowed``: a bool mask (vocab,) of the
    tokens a constraint permits (applied last, so no penalty can bring a forbidden token back)."""
    import torch

    logits = apply_repetition_penalty(logits, seen, req.repetition_penalty)
    logits = apply_penalties(logits, counts, req)
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    if banned:
        kept = logits.index_fill(0, torch.tensor(banned), float("-inf"))
        if allowed is None or bool(torch.isfinite(kept).any()):  # the ban never leaves a constraint no way out
            logits = kept
    if req.temperature == 0:
        return int(greedy_tokens(logits))
    logits = logits / req.temperature
    if 0 < req.top_k < logits.numel():
        kth = top_k(logits, req.top_k)[0][-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=0)
    if req.top_p < 1.0:
        probs = nucleus(probs, req.top_p)
    return draw(probs, generator)


def greedy_tokens(logprobs: torch.Tensor) -> int | list[int]:
    """The best token of [vocab] scores (each row's, of [B, vocab]); ``BrokenOutput`` where the scores hold a NaN
    (argmax stops at it)."""
    import torch

    best = torch.argmax(logprobs, dim=-1)
    if bool(torch.isnan(logprobs.gather(-1, best.unsqueeze(-1))).any()):
        raise BrokenOutput(NAN_SCORES)
    return best.tolist()


TOPK_CHUNK = 256


def top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.topk(scores, k)`` of a 1-D tensor, the same values (ties may list other ids), found among the k
    chunks of 256 with the largest maxima: every one of the k largest lies in such a chunk. On Gemma's 262k
    scores torch's took 0.80 ms for k = 5 (a token's alternatives), this 0.15; 0.72 vs 0.23 for k = 64
    (bench/sampling_speed.py)."""
    import torch

    n = scores.numel()
    if k <= 0 or k > 256 or n < 8 * TOPK_CHUNK * k:
        return torch.topk(scores, min(k, n))
    pad = (-n) % TOPK_CHUNK
    rows = (torch.cat([scores, scores.new_full((pad,), float("-inf"))]) if pad else scores).view(-1, TOPK_CHUNK)
    best = torch.topk(rows.amax(1), k).indices  # a NaN counts as largest here, as in torch.topk
    values, at = torch.topk(rows[best].reshape(-1), k)
    return values, best[at // TOPK_CHUNK] * TOPK_CHUNK + at % TOPK_CHUNK


def nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """``probs`` with every token dropped (zeroed) once the mass of the likelier ones already reaches ``top_p`` (the
    first token always stays); not renormalised. The kept tokens are found among the k likeliest, k growing 16-fold
    until their mass reaches ``top_p``, so beyond them every token is dropped: a full sort of Gemma's 262k
    probabilities took 25 ms a token, the first top-64 0.8 ms."""
    import torch

    n = probs.numel()
    k = min(64, n)
    while True:
        top, order = top_k(probs, k)  # descending
        cum = top.cumsum(0)
        if k == n or bool(cum[-1] >= top_p):
            break
        k = min(n, k * 16)
    keep = order[(cum - top) < top_p]
    kept = torch.zeros_like(probs)
    kept[keep] = probs[keep]
    return kept


def draw(probs: torch.Tensor, generator: torch.Generator) -> int:
    """One token drawn from ``probs`` (non-negative, any positive total) by inverting their running sum at a uniform
    number: ``torch.multinomial`` took 7.9 ms a draw over Gemma's 262k tokens (a decode step there is ~5 ms),
    this 0.3 ms. A token of zero probability is never drawn."""
    import torch

    cdf = probs.cumsum(0)
    total = cdf[-1]
    if math.isnan(float(total)):
        raise BrokenOutput(NAN_SCORES)
    if not bool(torch.isfinite(total)) or bool(total <= 0):
        return int(torch.multinomial(probs, 1, generator=generator))  # raises torch's own error, as before
    at = torch.rand((), generator=generator) * total
    last = torch.searchsorted(cdf, total)  # the last token with any mass (cdf reaches its total there)
    return int(torch.minimum(torch.searchsorted(cdf, at, right=True), last))
