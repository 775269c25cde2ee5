"""Response shapes of ``playground serve``: choices, logprobs objects and usage, from engine results."""

from __future__ import annotations

from typing import Any

from playground.domain.score import ScoreResult
from playground.domain.text import Completion, FinishReason, TokenEvent


def finish_reason(reason: FinishReason, tool_call: bool = False) -> str:
    if tool_call:
        return "tool_calls"
    return "length" if reason == FinishReason.LENGTH else "stop"


def completion_logprobs(events: list[TokenEvent], offset: int = 0) -> dict[str, Any]:
    """The legacy completions ``logprobs`` object for a run of generated tokens."""
    offsets, at = [], offset
    for e in events:
        offsets.append(at)
        at += len(e.text)
    return {"tokens": [e.text for e in events], "token_logprobs": [e.logprob for e in events],
            "top_logprobs": [_top_dict(e.top) for e in events], "text_offset": offsets}


def prompt_logprobs(score: ScoreResult) -> dict[str, Any]:
    """The same object for an echoed prompt: its first token has nothing before it (``null``, as vLLM answers)."""
    offsets, at = [], 0
    for t in score.tokens:
        offsets.append(at)
        at += len(t.text)
    return {"tokens": [t.text for t in score.tokens], "token_logprobs": [t.logprob for t in score.tokens],
            "top_logprobs": [_top_dict(t.top) if t.logprob is not None else None for t in score.tokens],
            "text_offset": offsets}


def joined(first: dict[str, Any] | None, second: dict[str, Any] | None) -> dict[str, Any] | None:
    """Two logprobs objects as one (the echoed prompt's, then the completion's)."""
    if first is None or second is None:
        return first or second
    return {key: first[key] + second[key] for key in ("tokens", "token_logprobs", "top_logprobs", "text_offset")}


def _top_dict(top: tuple) -> dict[str, float]:
    out: dict[str, float] = {}
    for a in top:  # two ids can decode to the same text: keep the likelier
        if a.text not in out or a.logprob > out[a.text]:
            out[a.text] = a.logprob
    return out


def chat_logprobs(events: list[TokenEvent], k: int) -> dict[str, Any]:
    """The chat ``logprobs`` object: ``{"content": [{"token", "logprob", "bytes", "top_logprobs"}]}``; ``bytes``
    are the token's own (a token ending inside a character has text "" but its bytes)."""
    return {"content": [{"token": e.text, "logprob": e.logprob, "bytes": list(e.token_bytes),
                         "top_logprobs": [{"token": a.text, "logprob": a.logprob, "bytes": list(a.text.encode())}
                                          for a in e.top[:k]]} for e in events]}


def usage_of(prompt_tokens: int, completions: list[Completion]) -> dict[str, int]:
    """Tokens read and generated (a stop sequence's tokens count: the model generated them)."""
    completion = sum(c.token_count for c in completions)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion}
