"""The OpenAI wire format for ``playground serve``: request bodies parsed and validated into engine requests,
results and token events turned into response objects, exceptions into OpenAI-shaped errors
(``{"error": {"message", "type", "param", "code"}}``). No networking here; ``server.py`` does the HTTP.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

from playground.domain.text import FinishReason, GenerationRequest, GenerationResult, TokenEvent
from playground.errors import ContextOverflow, KnownError, OutOfMemory, ParameterError

MAX_N = 16
MAX_LOGPROBS = 20


class ApiError(Exception):
    """An OpenAI-style error answer."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


# -- request parsing ---------------------------------------------------------------------------------------------
def _number(body: dict[str, Any], key: str, default: float, lo: float, hi: float, lo_open: bool = False) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, f"'{key}' must be a number", param=key)
    if value > hi or value < lo or (lo_open and value == lo):
        raise ApiError(400, f"'{key}' must be {'above' if lo_open else 'at least'} {lo:g} and at most {hi:g}",
                       param=key)
    return float(value)


def _integer(body: dict[str, Any], key: str, default: int | None, lo: int, hi: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"'{key}' must be an integer", param=key)
    if value < lo or (hi is not None and value > hi):
        raise ApiError(400, f"'{key}' must be between {lo} and {hi}" if hi is not None else
                       f"'{key}' must be at least {lo}", param=key)
    return value


def _stops(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise ApiError(400, "'stop' must be a string or a list of strings", param="stop")
    return tuple(s for s in stop if s)


def _unsupported(body: dict[str, Any]) -> None:
    for key in ("presence_penalty", "frequency_penalty"):
        if body.get(key) not in (None, 0, 0.0):
            raise ApiError(400, f"'{key}' is not supported by this server (use repetition_penalty)", param=key)
    for key in ("logit_bias", "suffix", "tools", "functions", "response_format"):
        if body.get(key) not in (None, {}, [], "") and not (key == "response_format" and body[key] ==
                                                            {"type": "text"}):
            raise ApiError(400, f"'{key}' is not supported by this server", param=key)
    if body.get("best_of") not in (None, 1):
        raise ApiError(400, "'best_of' is not supported by this server", param="best_of")


def _sampling(body: dict[str, Any], max_tokens_key: str = "max_tokens", default_max: int = 16) -> dict[str, Any]:
    _unsupported(body)
    max_tokens = body.get(max_tokens_key)
    if max_tokens is None and max_tokens_key != "max_tokens":
        max_tokens = body.get("max_tokens")
    return {
        "max_new_tokens": _integer({"max_tokens": max_tokens}, "max_tokens", default_max, 1),
        "temperature": _number(body, "temperature", 1.0, 0.0, 2.0),
        "top_p": _number(body, "top_p", 1.0, 0.0, 1.0, lo_open=True),
        "top_k": _integer(body, "top_k", 0, 0) or 0,
        "repetition_penalty": _number(body, "repetition_penalty", 1.0, 0.0, 10.0, lo_open=True),
        "stop": _stops(body),
        "seed": _integer(body, "seed", None, 0, 2**63 - 1),
        "n": _integer(body, "n", 1, 1, MAX_N),
    }


def _message_text(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}]
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ApiError(400, "only text content parts are supported", param=f"messages[{index}].content")
            parts.append(part["text"])
        return "".join(parts)
    if content is None:
        return ""
    raise ApiError(400, "'content' must be a string or a list of text parts", param=f"messages[{index}].content")


def transcript(messages: list[dict[str, str]]) -> str:
    """A plain "Role: text" transcript ending with "Assistant:", for models without a chat template."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join([*lines, "Assistant:"])


@dataclass(frozen=True)
class ParsedRequest:
    chat: bool
    request: GenerationRequest
    stream: bool
    logprobs: int | None  # None: not asked for
    echo: str  # prompt text echoed before the completion ("" = no echo)
    include_usage: bool


def parse_completion(body: dict[str, Any]) -> ParsedRequest:
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise ApiError(400, "'prompt' must be one string (lists of prompts or token ids are not supported)",
                           param="prompt")
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise ApiError(400, "'prompt' is required and must be a string", param="prompt")
    logprobs = _integer(body, "logprobs", None, 0, MAX_LOGPROBS)
    echo = bool(body.get("echo"))
    if echo and logprobs is not None:
        raise ApiError(400, "'echo' together with 'logprobs' (prompt logprobs) is not supported", param="echo")
    request = GenerationRequest(prompt=prompt, top_logprobs=logprobs or 0, **_sampling(body))
    return ParsedRequest(False, request, bool(body.get("stream")), logprobs, prompt if echo else "",
                         _include_usage(body))


def parse_chat(body: dict[str, Any]) -> ParsedRequest:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list", param="messages")
    turns = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise ApiError(400, "each message needs a 'role'", param=f"messages[{i}]")
        if m["role"] not in ("system", "developer", "user", "assistant"):
            raise ApiError(400, f"role {m['role']!r} is not supported", param=f"messages[{i}].role")
        role = "system" if m["role"] == "developer" else m["role"]
        turns.append({"role": role, "content": _message_text(m.get("content"), i)})
    logprobs = body.get("logprobs")
    if logprobs not in (None, True, False):
        raise ApiError(400, "'logprobs' must be a boolean", param="logprobs")
    top = _integer(body, "top_logprobs", None, 0, MAX_LOGPROBS)
    if top is not None and not logprobs:
        raise ApiError(400, "'top_logprobs' needs 'logprobs': true", param="top_logprobs")
    k = (top or 0) if logprobs else None
    request = GenerationRequest(prompt=transcript(turns), messages=tuple(turns), top_logprobs=k or 0,
                                **_sampling(body, "max_completion_tokens", default_max=256))
    return ParsedRequest(True, request, bool(body.get("stream")), k, "", _include_usage(body))


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


# -- response shapes ------------------------------------------------------------------------------------------------
def finish_reason(reason: FinishReason) -> str:
    return "length" if reason == FinishReason.LENGTH else "stop"


def completion_logprobs(events: list[TokenEvent], offset: int = 0) -> dict[str, Any]:
    """The legacy completions ``logprobs`` object for a run of tokens."""
    offsets, at = [], offset
    for e in events:
        offsets.append(at)
        at += len(e.text)
    return {"tokens": [e.text for e in events], "token_logprobs": [e.logprob for e in events],
            "top_logprobs": [_top_dict(e) for e in events], "text_offset": offsets}


def _top_dict(e: TokenEvent) -> dict[str, float]:
    top: dict[str, float] = {}
    for a in e.top:  # two ids can decode to the same text: keep the likelier
        if a.text not in top or a.logprob > top[a.text]:
            top[a.text] = a.logprob
    return top


def chat_logprobs(events: list[TokenEvent], k: int) -> dict[str, Any]:
    """The chat ``logprobs`` object: ``{"content": [{"token", "logprob", "bytes", "top_logprobs"}]}``."""
    return {"content": [{"token": e.text, "logprob": e.logprob, "bytes": list(e.text.encode()),
                         "top_logprobs": [{"token": a.text, "logprob": a.logprob, "bytes": list(a.text.encode())}
                                          for a in e.top[:k]]} for e in events]}


def usage_of(result: GenerationResult) -> dict[str, int]:
    completion = sum(len(c.tokens) for c in result.completions)
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": completion,
            "total_tokens": result.prompt_tokens + completion}


# -- the server ----------------------------------------------------------------------------------------------------


def api_error(exc: BaseException) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ContextOverflow):
        return ApiError(400, str(exc), code="context_length_exceeded")
    if isinstance(exc, OutOfMemory):
        return ApiError(503, str(exc), "server_error")
    if isinstance(exc, ParameterError):
        return ApiError(400, str(exc))
    if isinstance(exc, KnownError):
        return ApiError(500, str(exc), "server_error")
    traceback.print_exception(exc)
    return ApiError(500, f"internal server error ({type(exc).__name__})", "server_error")
