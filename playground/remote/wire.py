"""The OpenAI wire format for ``playground serve``: request bodies parsed and validated into engine requests.
No networking here (``server.py``), no response shapes (``wire_out.py``).

Beyond the basics: ``prompt`` as a list of strings or of token ids (one choice per prompt, ``n`` each, in order),
``echo`` (with ``logprobs``: the prompt's own token log-probabilities) and ``max_tokens: 0``; presence / frequency
penalties and ``logit_bias``; ``response_format`` (json_object, json_schema) plus vLLM's ``structured_outputs``
(and its older ``guided_json`` / ``guided_regex`` / ``guided_choice``); ``tools`` (``tools.py``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any

from playground.domain.text import MAX_LOGIT_BIAS, MIN_TEMPERATURE, Constraint, GenerationRequest
from playground.remote.api_error import ApiError
from playground.remote.tools import ToolSpec, call_text, parse_tools, tool_result_text, with_tools

MAX_N = 16
MAX_LOGPROBS = 20
MAX_PROMPTS = 64
MAX_MAX_TOKENS = 1 << 20


# -- fields ----------------------------------------------------------------------------------------------------------
def _number(body: dict[str, Any], key: str, default: float, lo: float, hi: float, lo_open: bool = False) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(400, f"'{key}' must be a finite number", param=key)
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


def _logit_bias(body: dict[str, Any]) -> tuple[tuple[int, float], ...]:
    bias = body.get("logit_bias")
    if bias in (None, {}):
        return ()
    if not isinstance(bias, dict):
        raise ApiError(400, "'logit_bias' must map token ids to numbers", param="logit_bias")
    out = []
    for key, value in bias.items():
        try:
            token = int(key)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, f"logit_bias key {key!r} is not a token id", param="logit_bias") from exc
        if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
                or abs(value) > MAX_LOGIT_BIAS or token < 0):
            raise ApiError(400, f"logit_bias of {key} must be a number between -100 and 100", param="logit_bias")
        out.append((token, float(value)))
    return tuple(out)


def _unsupported(body: dict[str, Any]) -> None:
    for key in ("suffix", "functions"):
        if body.get(key) not in (None, {}, [], ""):
            raise ApiError(400, f"'{key}' is not supported by this server", param=key)
    if body.get("best_of") not in (None, 1):
        raise ApiError(400, "'best_of' is not supported by this server", param="best_of")


def _constraint(body: dict[str, Any]) -> Constraint | None:
    """``response_format`` (OpenAI), ``structured_outputs`` (vLLM) or ``guided_*`` (vLLM before 0.10)."""
    fmt = body.get("response_format")
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind == "text":
            pass
        elif kind == "json_object":
            return Constraint("json_object")
        elif kind == "json_schema":
            spec = fmt.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            if not isinstance(schema, dict):
                raise ApiError(400, "response_format json_schema needs {'json_schema': {'name', 'schema': {...}}}",
                               param="response_format")
            return Constraint("json_schema", json.dumps(schema))
        else:
            raise ApiError(400, "response_format 'type' must be 'text', 'json_object' or 'json_schema'",
                           param="response_format")
    outputs = body.get("structured_outputs")
    guided = outputs if isinstance(outputs, dict) else {k.removeprefix("guided_"): body[k] for k in
                                                        ("guided_json", "guided_regex", "guided_choice",
                                                         "guided_grammar") if body.get(k) is not None}
    for key, kind in (("json", "json_schema"), ("regex", "regex"), ("choice", "choice"), ("grammar", "lark")):
        value = guided.get(key)
        if value is None:
            continue
        if kind == "json_schema":
            return Constraint(kind, value if isinstance(value, str) else json.dumps(value))
        if kind == "choice":
            if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
                raise ApiError(400, "'choice' must be a list of strings", param="structured_outputs")
            return Constraint(kind, json.dumps(value))
        if not isinstance(value, str):
            raise ApiError(400, f"'{key}' must be a string", param="structured_outputs")
        return Constraint(kind, value)
    return None


def _sampling(body: dict[str, Any], max_key: str, default_max: int) -> tuple[dict[str, Any], int]:
    """The GenerationRequest fields shared by both endpoints, and the requested max tokens (0 allowed)."""
    _unsupported(body)
    max_tokens = body.get(max_key)
    if max_tokens is None and max_key != "max_tokens":
        max_tokens = body.get("max_tokens")
    wanted = _integer({"max_tokens": max_tokens}, "max_tokens", default_max, 0, MAX_MAX_TOKENS)
    temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
    if 0 < temperature < MIN_TEMPERATURE:
        raise ApiError(400, f"'temperature' must be 0 (greedy) or at least {MIN_TEMPERATURE:g}", param="temperature")
    fields = {
        "max_new_tokens": max(1, wanted or 0),
        "temperature": temperature,
        "top_p": _number(body, "top_p", 1.0, 0.0, 1.0, lo_open=True),
        "top_k": _integer(body, "top_k", 0, 0) or 0,
        "repetition_penalty": _number(body, "repetition_penalty", 1.0, 0.0, 10.0, lo_open=True),
        "presence_penalty": _number(body, "presence_penalty", 0.0, -2.0, 2.0),
        "frequency_penalty": _number(body, "frequency_penalty", 0.0, -2.0, 2.0),
        "logit_bias": _logit_bias(body),
        "stop": _stops(body),
        "seed": _integer(body, "seed", None, 0, 2**63 - 1),
        "n": _integer(body, "n", 1, 1, MAX_N),
        "constraint": _constraint(body),
        "cap_to_context": False,
    }
    return fields, wanted or 0


# -- requests --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParsedRequest:
    chat: bool
    requests: tuple[GenerationRequest, ...]  # one per prompt; choices are numbered prompt * n + completion
    stream: bool
    logprobs: int | None  # None: not asked for
    echo: bool  # completions: the prompt is part of each choice's text (and of its logprobs)
    generate: bool  # False for max_tokens 0: echo / score only
    include_usage: bool
    tools: ToolSpec | None = None

    @property
    def request(self) -> GenerationRequest:
        return self.requests[0]

    @property
    def n(self) -> int:
        return self.requests[0].n


def _prompts(value: Any) -> list[str | tuple[int, ...]]:
    """``prompt``: a string, a list of strings, a list of token ids, or a list of token-id lists."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(p, str) for p in value):
            return list(value)
        if all(isinstance(t, int) and not isinstance(t, bool) for t in value):
            return [tuple(value)]
        if all(isinstance(p, list) and p and all(isinstance(t, int) and not isinstance(t, bool) for t in p)
               for p in value):
            return [tuple(p) for p in value]
    raise ApiError(400, "'prompt' must be a string, a list of strings, a list of token ids or a list of such lists",
                   param="prompt")


def parse_completion(body: dict[str, Any]) -> ParsedRequest:
    prompts = _prompts(body.get("prompt"))
    if len(prompts) > MAX_PROMPTS:
        raise ApiError(400, f"at most {MAX_PROMPTS} prompts per request", param="prompt")
    if any(isinstance(p, tuple) and min(p) < 0 for p in prompts):
        raise ApiError(400, "token ids must not be negative", param="prompt")
    logprobs = _integer(body, "logprobs", None, 0, MAX_LOGPROBS)
    echo = bool(body.get("echo"))
    fields, wanted = _sampling(body, "max_tokens", 16)
    if wanted == 0 and not echo:
        fields["n"] = 1
    base = GenerationRequest(prompt="", top_logprobs=logprobs or 0, **fields)
    requests = tuple(replace(base, prompt=p) if isinstance(p, str) else replace(base, prompt_ids=p)
                     for p in prompts)
    return ParsedRequest(False, requests, bool(body.get("stream")), logprobs, echo, wanted > 0, _include_usage(body))


def parse_chat(body: dict[str, Any]) -> ParsedRequest:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list", param="messages")
    tools = parse_tools(body)
    turns = with_tools([_turn(m, i) for i, m in enumerate(messages)], tools)
    logprobs = body.get("logprobs")
    if logprobs not in (None, True, False):
        raise ApiError(400, "'logprobs' must be a boolean", param="logprobs")
    top = _integer(body, "top_logprobs", None, 0, MAX_LOGPROBS)
    if top is not None and not logprobs:
        raise ApiError(400, "'top_logprobs' needs 'logprobs': true", param="top_logprobs")
    k = (top or 0) if logprobs else None
    fields, wanted = _sampling(body, "max_completion_tokens", 256)
    if wanted == 0:
        raise ApiError(400, "'max_tokens' must be at least 1 for chat completions", param="max_tokens")
    if tools is not None:
        if fields["constraint"] is not None and tools.forced:
            raise ApiError(400, "a forced tool call cannot also follow 'response_format'", param="response_format")
        if fields["constraint"] is None:
            fields["constraint"] = tools.constraint()
    request = GenerationRequest(prompt=transcript(turns), messages=tuple(turns), top_logprobs=k or 0, **fields)
    return ParsedRequest(True, (request,), bool(body.get("stream")), k, False, True, _include_usage(body), tools)


def _turn(m: Any, i: int) -> dict[str, str]:
    if not isinstance(m, dict) or not isinstance(m.get("role"), str):
        raise ApiError(400, "each message needs a 'role'", param=f"messages[{i}]")
    role = m["role"]
    if role not in ("system", "developer", "user", "assistant", "tool"):
        raise ApiError(400, f"role {role!r} is not supported", param=f"messages[{i}].role")
    content = _message_text(m.get("content"), i)
    if role == "tool":
        return {"role": "user", "content": tool_result_text(content)}
    if role == "assistant" and m.get("tool_calls"):
        calls = call_text(m["tool_calls"], i)
        return {"role": "assistant", "content": f"{content}\n{calls}" if content else calls}
    return {"role": "system" if role == "developer" else role, "content": content}


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


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))
