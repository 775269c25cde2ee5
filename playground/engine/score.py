"""Score texts: the log-probability the model gives each token of a text (and its top alternatives), in one
forward pass per text, with no sampling.

    score(tm, "Country: France\\nCapital:", " Paris", top_logprobs=5) -> ScoreResult
    score_batch(tm, [ScoreItem(text, continuation), ...], top_logprobs) -> [ScoreResult, ...] (same order)

``text`` is encoded with the tokenizer's special tokens (BOS), ``continuation`` without, and the two id lists are
joined (as lm-evaluation-harness does): the continuation's tokens are exactly the ones its likelihood is
measured over. Token texts come from the tokenizer's offsets, so they concatenate to ``text + continuation``.

On transformers' forward (and the generic path, whose module it is), texts are batched (right-padded,
``batch_size`` at a time); on the fused runner they run one by one through its prefill. Only ``chunk``
positions' full-vocabulary logits exist at once, so a long text costs hidden-size memory, not vocabulary-size
memory, per position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from playground.domain.score import ScoredToken, ScoreItem, ScoreResult
from playground.domain.text import Alternative
from playground.engine.device import free_memory
from playground.engine.generate import _Detokenizer, _piece
from playground.engine.token_bytes import token_bytes
from playground.errors import ContextOverflow, KnownError, OutOfMemory, ParameterError

if TYPE_CHECKING:
    import torch

    from playground.engine.text import TextModel

MAX_TOP = 20
LOGIT_CHUNK = 256  # positions whose full-vocabulary logits are computed at once


@dataclass
class _Encoded:
    ids: list[int]
    texts: list[str | None]  # None: a special token the tokenizer added (context, not listed)
    continuation_start: int  # index into ids


def score(tm: TextModel, text: str, continuation: str = "", top_logprobs: int = 0) -> ScoreResult:
    """Each token of ``text + continuation`` with its log-probability given the tokens before it."""
    return score_batch(tm, [ScoreItem(text, continuation)], top_logprobs)[0]


def score_batch(tm: TextModel, items: Sequence[ScoreItem], top_logprobs: int = 0,
                batch_size: int = 8) -> list[ScoreResult]:
    """``score`` for many items, batched on the device; results in the items' order."""
    import torch

    if not 0 <= top_logprobs <= MAX_TOP:
        raise ParameterError(f"top logprobs must be between 0 and {MAX_TOP}")
    encoded = [_encode(tm, item) for item in items]
    for enc in encoded:
        if len(enc.ids) > tm.context_length:
            raise ContextOverflow(f"The text is {len(enc.ids)} tokens but {tm.id} reads at most "
                                  f"{tm.context_length}; shorten it")
    rows: list[Any] = [None] * len(encoded)
    try:
        with torch.inference_mode():
            if tm.fast is not None and hasattr(tm.fast, "hidden_states"):
                for i, enc in enumerate(encoded):
                    rows[i] = _fast_rows(tm, enc.ids, top_logprobs)
            else:
                order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].ids))  # similar lengths together
                for start in range(0, len(order), batch_size):
                    group = order[start:start + batch_size]
                    for i, row in zip(group, _batch_rows(tm, [encoded[i].ids for i in group], top_logprobs),
                                      strict=True):
                        rows[i] = row
    except torch.OutOfMemoryError as exc:
        free_memory(tm.device)
        raise OutOfMemory(f"Out of memory on {tm.device} while scoring; memory was freed. Score fewer or shorter "
                          "texts") from exc
    return [_result(tm, enc, row, top_logprobs) for enc, row in zip(encoded, rows, strict=True)]


# -- encoding --------------------------------------------------------------------------------------------------------
def _encode(tm: TextModel, item: ScoreItem) -> _Encoded:
    if item.ids is not None:
        if not item.ids:
            raise ParameterError("nothing to score: the token list is empty")
        vocab = _vocab_size(tm)
        if min(item.ids) < 0 or max(item.ids) >= vocab:
            raise ParameterError(f"token ids must be between 0 and {vocab - 1}")
        detok = _Detokenizer(tm.tokenizer, [])
        return _Encoded(list(item.ids), [detok.push(t) for t in item.ids], len(item.ids))
    ids, texts = _pieces(tm, item.text, special=True)
    if item.continuation:
        more, more_texts = _pieces(tm, item.continuation, special=False)
        start = len(ids)
        ids, texts = ids + more, texts + more_texts
    else:
        start = len(ids)
    if not ids:
        bos = tm.tokenizer.bos_token_id
        if bos is None:
            raise KnownError("Nothing to score: the text is empty")
        ids, texts, start = [bos], [None], 1
    return _Encoded(ids, texts, start)


def _pieces(tm: TextModel, text: str, special: bool) -> tuple[list[int], list[str | None]]:
    """Token ids of ``text`` and each one's text (None for added special tokens). Each token's text runs from its
    offset to the next token's, so the pieces concatenate to ``text`` whatever the tokenizer trims."""
    tok = tm.tokenizer
    try:
        enc = tok(text, add_special_tokens=special, return_offsets_mapping=True, return_special_tokens_mask=True)
    except (NotImplementedError, ValueError, TypeError):  # a slow tokenizer has no offsets
        ids = list(tok(text, add_special_tokens=special)["input_ids"])
        detok = _Detokenizer(tok, [])
        return ids, [detok.push(t) for t in ids]
    ids = list(enc["input_ids"])
    added = list(enc.get("special_tokens_mask") or [0] * len(ids)) if special else [0] * len(ids)
    listed = [i for i, a in enumerate(added) if not a]
    starts = [enc["offset_mapping"][i][0] for i in listed]
    texts: list[str | None] = [None] * len(ids)
    for n, i in enumerate(listed):
        begin = 0 if n == 0 else starts[n]
        end = starts[n + 1] if n + 1 < len(listed) else len(text)
        texts[i] = text[begin:max(begin, end)]
    return ids, texts


def _vocab_size(tm: TextModel) -> int:
    return tm.vocab_size or len(tm.tokenizer)


# -- forward ---------------------------------------------------------------------------------------------------------
# A row per text: for each position p >= 1, (logprob of ids[p], argmax at p-1, top values, top ids) as tensors.
def _stats(logits: torch.Tensor, targets: torch.Tensor, k: int) -> tuple[torch.Tensor, ...]:
    """Per position: the target's log-probability, whether it is the argmax, and the top-k (values, ids)."""
    import torch

    logprobs = torch.log_softmax(logits.float(), dim=-1)  # (T, vocab)
    chosen = logprobs.gather(1, targets[:, None])[:, 0]
    greedy = logprobs.argmax(dim=-1) == targets
    if k:
        values, ids = torch.topk(logprobs, k, dim=-1)
    else:
        values = ids = torch.empty((len(targets), 0))
    return chosen.cpu(), greedy.cpu(), values.cpu(), ids.cpu()


def _rows_from_logits(make_logits: Any, ids: list[int], k: int, device: Any) -> tuple[torch.Tensor, ...]:
    """Stats for positions 1.. of ``ids``; ``make_logits(start, end)`` gives logits of positions [start, end)."""
    import torch

    targets = torch.tensor(ids[1:])
    parts = []
    for start in range(0, len(ids) - 1, LOGIT_CHUNK):
        end = min(start + LOGIT_CHUNK, len(ids) - 1)
        parts.append(_stats(make_logits(start, end), targets[start:end].to(device), k))
    if not parts:
        empty = torch.empty(0)
        return empty, empty.bool(), torch.empty((0, k)), torch.empty((0, k), dtype=torch.long)
    return tuple(torch.cat(p) for p in zip(*parts, strict=True))


def _fast_rows(tm: TextModel, ids: list[int], k: int) -> tuple[torch.Tensor, ...]:
    from playground.engine.fast.score_pass import hidden_logits, prompt_hidden

    hidden = prompt_hidden(tm.fast, ids)

    def make(start: int, end: int) -> torch.Tensor:
        return hidden_logits(tm.fast, hidden[start:end])

    return _rows_from_logits(make, ids, k, tm.device)


def _batch_rows(tm: TextModel, batch: list[list[int]], k: int) -> list[tuple[torch.Tensor, ...]]:
    """One padded forward of the base model, then the head over each text's positions a chunk at a time."""
    import torch

    model = tm.model
    longest = max(len(ids) for ids in batch)
    pad = tm.tokenizer.pad_token_id if tm.tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(batch), longest), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), longest), dtype=torch.long)
    for b, ids in enumerate(batch):  # right padding: real tokens keep positions 0..len-1
        input_ids[b, :len(ids)] = torch.tensor(ids)
        mask[b, :len(ids)] = 1
    base = getattr(model, model.base_model_prefix)
    hidden = base(input_ids=input_ids.to(tm.device), attention_mask=mask.to(tm.device),
                  use_cache=False).last_hidden_state  # (B, T, hidden)
    head = model.get_output_embeddings()
    cap = getattr(model.config, "final_logit_softcapping", None)
    rows = []
    for b, ids in enumerate(batch):
        def make(start: int, end: int, b: int = b) -> torch.Tensor:
            logits = head(hidden[b, start:end])
            if cap:
                logits = torch.tanh(logits / cap) * cap
            return logits

        rows.append(_rows_from_logits(make, ids, k, tm.device))
    return rows


# -- results ---------------------------------------------------------------------------------------------------------
def _result(tm: TextModel, enc: _Encoded, row: tuple[torch.Tensor, ...], k: int) -> ScoreResult:
    chosen, greedy, top_values, top_ids = (t.tolist() for t in row)
    tokens, start = [], 0
    for p, (token, text) in enumerate(zip(enc.ids, enc.texts, strict=True)):
        if p == enc.continuation_start:
            start = len(tokens)
        if text is None:
            continue
        if p == 0:
            logprob, top, is_greedy = None, (), False
        else:
            logprob, is_greedy = chosen[p - 1], bool(greedy[p - 1])
            top = tuple(Alternative(_piece(tm.tokenizer, i), i, v)
                        for v, i in zip(top_values[p - 1], top_ids[p - 1], strict=True))
        tokens.append(ScoredToken(text, token, logprob, top, is_greedy, token_bytes(tm.tokenizer, token)))
    if enc.continuation_start >= len(enc.ids):
        start = len(tokens)
    return ScoreResult(model=tm.id, tokens=tuple(tokens), continuation_start=start, prompt_tokens=len(enc.ids))
