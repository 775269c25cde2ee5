"""Every position's hidden state of a prompt on the fused runner, for scoring (``engine/score.py``).

Positions are computed by the runner's own prefill (``forward.prefill_chunk``, chunk by chunk), in slot 0; the
slot is left holding the prompt but marked as not reusable (as after ``rewind(0)``), so the next prefill
recomputes what it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def prompt_hidden(fast: Any, ids: list[int]) -> torch.Tensor:
    """The final hidden state at every position of ``ids`` (fp32 [len(ids), hidden]), before the final norm."""
    return fast.hidden_states(0, ids)


def hidden_logits(fast: Any, hidden: torch.Tensor) -> torch.Tensor:
    """Logits (fp32 [T, vocab]) of hidden states from ``prompt_hidden``."""
    return fast.logits(hidden)
