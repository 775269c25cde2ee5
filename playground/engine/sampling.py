"""Turn one position's logits into the next token, and report log-probabilities.

Log-probabilities are those of the model's own distribution (before temperature, top-k/top-p and repetition
penalty), the way the OpenAI API reports them: they say what the model believes, not how we sampled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from playground.domain import GenerationRequest


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL-style penalty: shrink the logits of tokens already in the context."""
    if penalty == 1.0 or seen.numel() == 0:
        return logits
    import torch

    picked = logits.gather(0, seen)
    picked = torch.where(picked > 0, picked / penalty, picked * penalty)
    return logits.scatter(0, seen, picked)


def pick_token(logits: torch.Tensor, req: GenerationRequest, seen: torch.Tensor,
               generator: torch.Generator) -> int:
    """Sample (or take the argmax when temperature is 0) from fp32 CPU ``logits`` of shape (vocab,)."""
    import torch

    logits = apply_repetition_penalty(logits, seen, req.repetition_penalty)
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
