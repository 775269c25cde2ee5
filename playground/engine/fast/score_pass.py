"""Every position's hidden state of a prompt on the fast path, for scoring (``engine/score.py``).

Kept apart from ``llama.py`` on purpose: it only drives FastLlama's cache and forward (``rewind``, ``reserve``,
``_forward``, ``_logits``) and changes none of them. Positions are computed with the prefill weights (full
precision), chunk by chunk as a prefill would, and the cache is left holding the prompt, but marked as not
reusable (as after ``rewind(0)``), so the next prefill recomputes what it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

CHUNK = 512  # as PREFILL_CHUNK: bounds the attention scores of a long text


def prompt_hidden(fast: Any, ids: list[int]) -> torch.Tensor:
    """The final hidden state at every position of ``ids`` (fp32 [len(ids), hidden]), before the final norm."""
    import torch

    fast.rewind(0)
    fast.reserve(len(ids))
    tokens = torch.tensor(ids, device=fast.device)
    parts = [fast._forward(tokens[start:start + CHUNK], decode=False) for start in range(0, len(ids), CHUNK)]
    fast._tokens.extend(ids)  # the cache holds these positions now (rewind keeps the two in step)
    return torch.cat(parts)


def hidden_logits(fast: Any, hidden: torch.Tensor) -> torch.Tensor:
    """Full-precision logits (fp32 [T, vocab]) of hidden states from ``prompt_hidden``."""
    return fast._logits(hidden, decode=False)
