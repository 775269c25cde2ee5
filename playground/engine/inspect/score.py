"""Score continuations: the log-probability a transformers model gives each token of ``continuation`` after
``text``, many pairs batched.

``text`` is encoded with the tokenizer's special tokens, ``continuation`` without, and the ids are joined (as
lm-evaluation-harness does), so the scored tokens are exactly the continuation's. Batches are right-padded: causal
attention never lets a real token see the padding after it. Only the continuation's positions go through the
output head, so a long template costs hidden-size memory per position, not vocabulary-size.

A stand-in for the engine's own ``score`` (being written for ``serve``): same meaning, per-token logprobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from playground.engine.device import free_memory
from playground.engine.inspect.model import decoder_parts
from playground.errors import ContextOverflow, OutOfMemory, ParameterError

if TYPE_CHECKING:
    from playground.engine.text import TextModel

BATCH = 8


def score(tm: TextModel, text: str, continuation: str) -> list[float]:
    """log P(token | everything before it) for each token of ``continuation`` after ``text``."""
    return score_batch(tm, [(text, continuation)])[0]


def score_batch(tm: TextModel, pairs: Sequence[tuple[str, str]], batch_size: int = BATCH) -> list[list[float]]:
    """``score`` for each (text, continuation) pair, ``batch_size`` forward passes at a time; in order."""
    import torch

    encoded = [_encode(tm, text, cont) for text, cont in pairs]
    results: list[list[float]] = [[] for _ in encoded]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))  # similar lengths pad least
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                group = order[start:start + batch_size]
                for i, row in zip(group, _score_group(tm, [encoded[i] for i in group]), strict=True):
                    results[i] = row
    except torch.OutOfMemoryError as exc:
        free_memory(tm.device)
        raise OutOfMemory(f"Out of memory on {tm.device} while scoring; memory was freed") from exc
    return results


def _encode(tm: TextModel, text: str, continuation: str) -> tuple[list[int], int]:
    """(ids of text + continuation, index of the continuation's first token)."""
    if not continuation:
        raise ParameterError("A continuation to score must not be empty")
    head = list(tm.tokenizer(text, add_special_tokens=True)["input_ids"])
    tail = list(tm.tokenizer(continuation, add_special_tokens=False)["input_ids"])
    if not head:  # nothing to condition on: the first token has no prediction without a BOS
        bos = tm.tokenizer.bos_token_id
        if bos is None:
            raise ParameterError("The text before a continuation must not be empty for this model")
        head = [bos]
    if len(head) + len(tail) > tm.context_length:
        raise ContextOverflow(f"The text is {len(head) + len(tail)} tokens; {tm.id} reads at most "
                              f"{tm.context_length}")
    return head + tail, len(head)


def _score_group(tm: TextModel, group: list[tuple[list[int], int]]) -> list[list[float]]:
    import torch

    parts = decoder_parts(tm.model)
    width = max(len(ids) for ids, _ in group)
    ids = torch.zeros((len(group), width), dtype=torch.long)
    mask = torch.zeros((len(group), width), dtype=torch.long)
    for row, (tokens, _) in enumerate(group):
        ids[row, :len(tokens)] = torch.tensor(tokens)
        mask[row, :len(tokens)] = 1
    hidden = tm.model.base_model(input_ids=ids.to(tm.device), attention_mask=mask.to(tm.device),
                                 use_cache=False).last_hidden_state  # (B, T, D), final norm applied
    out = []
    for row, (tokens, cont) in enumerate(group):
        # The state at position p predicts token p + 1.
        logits = parts.head(hidden[row, cont - 1:len(tokens) - 1]).float()  # (n, vocab)
        if parts.softcap:
            logits = torch.tanh(logits / parts.softcap) * parts.softcap
        logprobs = torch.log_softmax(logits, dim=-1)
        targets = torch.tensor(tokens[cont:], device=logprobs.device)
        out.append(logprobs.gather(1, targets[:, None])[:, 0].cpu().tolist())
    return out
