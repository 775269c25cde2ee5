"""Frozen dataclasses that cross threads: requests, streamed events and results.

Requests are snapshots taken on the main thread; the worker never reads widgets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from playground.errors import ParameterError

MIN_TEMPERATURE = 0.01  # below this (but above 0) softmax(logits / t) overflows: 0 means greedy
MAX_LOGIT_BIAS = 100.0  # OpenAI's range for logit_bias values
CONSTRAINT_KINDS = ("json_schema", "json_object", "regex", "choice", "lark")


@dataclass(frozen=True)
class Constraint:
    """What the output must match, applied as a mask over the vocabulary at every step (``engine/constrain.py``).

    ``kind``: json_schema (``spec`` = the schema as JSON text), json_object (any JSON object; ``spec`` unused),
    regex (``spec`` = the pattern, matched whole), choice (``spec`` = a JSON list of strings: exactly one of them),
    lark (``spec`` = an llguidance Lark grammar; tool calls use it).
    """

    kind: str
    spec: str = ""

    def __post_init__(self) -> None:
        if self.kind not in CONSTRAINT_KINDS:
            raise ParameterError(f"unknown constraint {self.kind!r}; use one of {', '.join(CONSTRAINT_KINDS)}")


class FinishReason(StrEnum):
    STOP = "stop"  # end-of-sequence token or a stop sequence
    LENGTH = "length"  # max new tokens or the context window reached
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class GenerationRequest:
    """One raw completion: the model sees ``source + prompt`` with nothing added in between."""

    prompt: str
    source: str = ""
    max_new_tokens: int = 64
    temperature: float = 0.7  # 0 means greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 disables top-k
    repetition_penalty: float = 1.0
    no_repeat_ngram: int = 0  # ban any n-gram of generated tokens from repeating (0 = off); stops loops
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1
    top_logprobs: int = 5
    # Chat turns ({"role", "content"}); a model with a chat template gets these instead of source + prompt.
    messages: tuple[dict[str, str], ...] | None = None
    # OpenAI's penalties over the tokens generated so far: logit -= frequency * count + presence * (count > 0).
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, added to its logit), each in [-100, 100]
    prompt_ids: tuple[int, ...] | None = None  # token ids given directly (serve's token prompts): replace the text
    constraint: Constraint | None = None
    # False: a prompt + max_new_tokens past the model's context is an error (serve); True: decode stops at the end.
    cap_to_context: bool = True

    @property
    def text(self) -> str:
        return self.source + self.prompt

    def validate(self) -> None:
        """Raise ParameterError naming the first parameter out of range (NaN and infinities included)."""
        numbers = {"temperature": self.temperature, "top-p": self.top_p, "repetition penalty":
                   self.repetition_penalty, "presence penalty": self.presence_penalty,
                   "frequency penalty": self.frequency_penalty}
        for name, value in numbers.items():
            if not math.isfinite(value):  # NaN passes every comparison below
                raise ParameterError(f"{name} must be a finite number, not {value}")
        if self.seed is not None and not -(2**63) <= self.seed < 2**63 - self.n:
            raise ParameterError("seed must fit in 64 bits (between -2^63 and 2^63 - 1)")
        if self.max_new_tokens < 1:
            raise ParameterError("max new tokens must be at least 1")
        if self.temperature < 0:
            raise ParameterError("temperature must be 0 (greedy) or more")
        if 0 < self.temperature < MIN_TEMPERATURE:
            raise ParameterError(f"temperature must be 0 (greedy) or at least {MIN_TEMPERATURE:g}")
        if not 0 < self.top_p <= 1:
            raise ParameterError("top-p must be in (0, 1]")
        if self.top_k < 0:
            raise ParameterError("top-k must be 0 (off) or more")
        if self.repetition_penalty <= 0:
            raise ParameterError("repetition penalty must be positive")
        for name in ("presence", "frequency"):
            if not -2 <= getattr(self, f"{name}_penalty") <= 2:
                raise ParameterError(f"{name} penalty must be between -2 and 2")
        for token, bias in self.logit_bias:
            if token < 0 or not math.isfinite(bias) or abs(bias) > MAX_LOGIT_BIAS:
                raise ParameterError(f"logit bias of token {token} must be between -100 and 100")
        if self.prompt_ids is not None and (not self.prompt_ids or min(self.prompt_ids) < 0):
            raise ParameterError("token prompts must be non-empty lists of token ids")
        if self.no_repeat_ngram < 0 or self.no_repeat_ngram == 1:
            raise ParameterError("no-repeat n-gram size must be 0 (off) or at least 2")
        if self.n < 1:
            raise ParameterError("n must be at least 1")
        if any(s == "" for s in self.stop):
            raise ParameterError("stop sequences must not be empty")


@dataclass(frozen=True)
class Alternative:
    text: str
    token_id: int  # -1 when unknown (remote)
    logprob: float


@dataclass(frozen=True)
class TokenEvent:
    """One generated token, streamed as soon as it is known not to be part of a stop sequence."""

    completion: int  # index among the request's n completions
    index: int  # position within that completion
    text: str
    token_id: int  # -1 when unknown (a remote server sends token texts, not ids)
    # log-probability under the model's own distribution (before sampling transforms); None when a remote
    # server did not provide it (shown as "not provided by this server", never guessed)
    logprob: float | None
    top: tuple[Alternative, ...]
    # The token's own bytes (a token ending inside a character has text "" but not zero bytes); None: unknown.
    raw: bytes | None = field(default=None, compare=False)  # not stored: runs read back compare equal

    @property
    def token_bytes(self) -> bytes:
        return self.raw if self.raw is not None else self.text.encode()


@dataclass(frozen=True)
class Timings:
    load_s: float = 0.0
    ttft_s: float = 0.0  # from the call to the first token (prefill included)
    tokens_per_s: float = 0.0  # decode speed, counted after the first token

    def as_dict(self) -> dict[str, float]:
        return {"load_s": round(self.load_s, 4), "ttft_s": round(self.ttft_s, 4),
                "tokens_per_s": round(self.tokens_per_s, 2)}


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: FinishReason
    tokens: tuple[TokenEvent, ...]
    timings: Timings
    # Tokens the model produced (a stop sequence's tokens are not in ``tokens``); -1: unknown.
    generated: int = field(default=-1, compare=False)

    @property
    def token_count(self) -> int:
        return self.generated if self.generated >= 0 else len(self.tokens)


@dataclass(frozen=True)
class GenerationResult:
    model: str
    completions: tuple[Completion, ...]
    seed: int
    prompt_tokens: int
    device: str = "cpu"
    chat: bool = False  # True when the request's messages went through the model's chat template

    @property
    def first(self) -> Completion:
        return self.completions[0]

    def to_json(self, index: int = 0) -> dict[str, Any]:
        """The CLI's ``complete --json`` shape for one completion (``"logprob": null`` where a server gave none)."""
        c = self.completions[index]
        return {
            "model": self.model,
            "text": c.text,
            "finish_reason": str(c.finish_reason),
            "tokens": [
                {"text": t.text, "logprob": t.logprob,
                 "top": [{"text": a.text, "logprob": a.logprob} for a in t.top]}
                for t in c.tokens
            ],
            "timings": c.timings.as_dict(),
        }
