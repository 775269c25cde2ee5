"""A text's tokens as the inspector shows them: ids, each token's own text, and where the source, the prompt and
the completion begin.

Token texts come from the tokenizer's character offsets, so they concatenate back to the text: a character split
over several byte-level tokens goes to the first of them (the rest show ""), and characters a tokenizer leaves
out of every offset (SentencePiece's word-initial space) go to the token that follows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tokens:
    ids: list[int]
    texts: list[str]
    source_tokens: int  # tokens that start inside the source text
    prompt_tokens: int  # tokens that start inside source + prompt


def encode(tokenizer: Any, source: str, prompt: str, completion: str = "") -> Tokens:
    """Tokenize ``source + prompt + completion`` as the engine does (one string, with the tokenizer's special
    tokens) and place the segment boundaries."""
    text = source + prompt + completion
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    try:
        enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
        offsets = [tuple(o) for o in enc["offset_mapping"]]
    except (NotImplementedError, TypeError, ValueError, KeyError):  # a slow tokenizer has no offsets
        enc, offsets = tokenizer(text, add_special_tokens=True), None
    ids = [int(i) for i in enc["input_ids"]]
    if offsets is None:
        texts = [tokenizer.decode([i]) for i in ids]
        starts = _starts_by_prefix(tokenizer, text, len(ids))
    else:
        texts, starts = _texts_from_offsets(tokenizer, text, ids, offsets, special)
    source_end, prompt_end = len(source), len(source) + len(prompt)
    return Tokens(ids, texts, sum(1 for s in starts if s < source_end),
                  sum(1 for s in starts if s < prompt_end))


def _texts_from_offsets(tokenizer: Any, text: str, ids: list[int], offsets: list[tuple[int, int]],
                        special: set[int]) -> tuple[list[str], list[int]]:
    texts, starts = [], []
    cut = 0  # the text before ``cut`` belongs to earlier tokens
    last_plain = max((i for i, t in enumerate(ids) if t not in special or offsets[i][1] > offsets[i][0]),
                     default=-1)
    for i, (token, (_start, end)) in enumerate(zip(ids, offsets, strict=True)):
        if token in special and end <= _start:  # added by the tokenizer (BOS): not in the text
            texts.append(tokenizer.convert_ids_to_tokens(token))
            starts.append(cut)
            continue
        stop = len(text) if i == last_plain else max(end, cut)
        texts.append(text[cut:stop])
        starts.append(cut)
        cut = stop
    return texts, starts


def _starts_by_prefix(tokenizer: Any, text: str, count: int) -> list[int]:
    """Without offsets: each token's start, found by growing decoded prefixes (slow, rare)."""
    ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    starts = []
    for i in range(count):
        starts.append(len(tokenizer.decode(ids[:i], skip_special_tokens=True)))
    return starts


class Detokenizer:
    """Text of each generated token, decoded with a few tokens of context so word-initial spaces come out right;
    a token that ends inside a multi-byte character yields "" until the next one completes it."""

    def __init__(self, tokenizer: Any, context: list[int]) -> None:
        self._tok = tokenizer
        self._context = list(context[-4:])
        self._pending: list[int] = []

    def push(self, token: int) -> str:
        self._pending.append(token)
        before = self._tok.decode(self._context)
        full = self._tok.decode(self._context + self._pending)
        if full.endswith("\ufffd"):
            return ""
        self._context = (self._context + self._pending)[-4:]
        self._pending = []
        return full[len(before):]
