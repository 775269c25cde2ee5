"""Turn one position's logits into the next token, and report log-probabilities.

Log-probabilities are those of the model's own distribution (before temperature, top-k/top-p and repetition
penalty), the way the OpenAI API reports them: they say what the model believes, not how we sampled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from playground.domain.text import GenerationRequest


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
        return int(torch.argmax(logits))
    logits = logits / req.temperature
    if 0 < req.top_k < logits.numel():
        kth = torch.topk(logits, req.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if req.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cum = torch.softmax(sorted_logits, dim=0).cumsum(0)
        # Drop tokens once the mass before them already reaches top_p; the first token always stays.
        drop = (cum - torch.softmax(sorted_logits, dim=0)) >= req.top_p
        logits = logits.scatter(0, order, sorted_logits.masked_fill(drop, float("-inf")))
    probs = torch.softmax(logits, dim=0)
    return int(torch.multinomial(probs, 1, generator=generator))
