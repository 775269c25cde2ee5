"""Scoring: how likely a model finds a given text, token by token (no sampling).

``engine/score.py`` computes these; ``serve`` answers ``echo`` + ``logprobs`` with them, the Prompt tab colours a
prompt with them, and later modes (probes, multiple-choice columns) compare continuations by their sums.
"""

from __future__ import annotations

from dataclasses import dataclass

from playground.domain.text import Alternative


@dataclass(frozen=True)
class ScoreItem:
    """One text to score: ``text`` is the context, ``continuation`` (optional) the part whose likelihood is
    wanted. ``ids`` instead of text: token ids scored as they are (serve's token prompts)."""

    text: str = ""
    continuation: str = ""
    ids: tuple[int, ...] | None = None


@dataclass(frozen=True)
class ScoredToken:
    text: str  # texts of a result's tokens concatenate to its text ("" for a token ending inside a character)
    token_id: int
    # log P(token | everything before it) under the model; None for a first token with nothing before it
    logprob: float | None
    top: tuple[Alternative, ...]  # the likeliest tokens at this position (what the model expected instead)
    greedy: bool  # the token is the model's top choice here
    raw: bytes = b""  # the token's own bytes


@dataclass(frozen=True)
class ScoreResult:
    """Every token of ``text + continuation`` with its log-probability; special tokens the tokenizer adds (BOS)
    are context only and not listed. ``continuation_start``: index of the first continuation token."""

    model: str
    tokens: tuple[ScoredToken, ...]
    continuation_start: int
    prompt_tokens: int  # tokens the model read, special ones included

    @property
    def text(self) -> str:
        return "".join(t.text for t in self.tokens)

    @property
    def continuation(self) -> tuple[ScoredToken, ...]:
        return self.tokens[self.continuation_start:]

    @property
    def continuation_logprob(self) -> float:
        """Sum of the continuation's log-probabilities (log P(continuation | text)); the whole text's when there is
        no continuation (its first token, with nothing before it, counts 0)."""
        part = self.continuation if self.continuation_start < len(self.tokens) else self.tokens
        return sum(t.logprob or 0.0 for t in part)

    @property
    def continuation_greedy(self) -> bool:
        """True when greedy decoding from ``text`` would have produced the continuation (lm-eval's ``is_greedy``)."""
        return all(t.greedy for t in self.continuation)
