"""OpenAI tools for ``serve``: function definitions become a system prompt, a tool call is generated as a
Hermes-style block (the format Qwen, Hermes and many fine-tunes are trained on), constrained by a grammar so the
arguments always validate against the function's JSON schema:

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

``tool_choice``: "none" (no tools shown), "auto" (text, or a call: output starting with "<" must be a call),
"required" (a call to one of the tools), or a named function (a call to that one). One call per answer
(``parallel_tool_calls`` is not honoured). Assistant turns carrying ``tool_calls`` are written back in the same
format and ``role: "tool"`` results as ``<tool_response>`` user turns, so any chat template can render them.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from playground.domain.text import Constraint
from playground.remote.api_error import ApiError

OPEN, CLOSE = "<tool_call>\n", "\n</tool_call>"
JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
_PREFIX = re.compile(r'<tool_call>\n\{"name": "((?:[^"\\]|\\.)*)", "arguments": ')
_SUFFIX = "}" + CLOSE  # closes the call object, then the block
MAX_TOOLS = 64


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolSpec:
    tools: tuple[Tool, ...]
    choice: str  # auto | required | <function name>

    @property
    def forced(self) -> bool:
        """The answer must be a call (required or named)."""
        return self.choice != "auto"

    def constraint(self) -> Constraint:
        """A Lark grammar: a call block to an allowed tool (or, for auto, free text not starting with "<")."""
        allowed = [t for t in self.tools if self.choice in ("auto", "required") or t.name == self.choice]
        calls = [{"type": "object", "properties": {"name": {"const": t.name}, "arguments": t.parameters},
                  "required": ["name", "arguments"], "additionalProperties": False} for t in allowed]
        schema = {**(calls[0] if len(calls) == 1 else {"anyOf": calls}), "x-guidance": JSON_STYLE}
        grammar = f'call_block: {json.dumps(OPEN)} call {json.dumps(CLOSE)}\ncall: %json {json.dumps(schema)}\n'
        if self.choice == "auto":
            return Constraint("lark", "start: call_block | TEXT\n" + grammar + "TEXT: /[^<](.|\\n)*/\n")
        return Constraint("lark", "start: call_block\n" + grammar)

    def system_prompt(self) -> str:
        lines = [json.dumps({"type": "function", "function": {"name": t.name, "description": t.description,
                                                               "parameters": t.parameters}}, ensure_ascii=False)
                 for t in self.tools]
        return ("You can call functions. Their signatures, as JSON schemas:\n<tools>\n" + "\n".join(lines) +
                "\n</tools>\nTo call one, answer with exactly this and nothing else:\n<tool_call>\n"
                '{"name": "<function name>", "arguments": {<arguments as JSON>}}\n</tool_call>')


def parse_tools(body: dict[str, Any]) -> ToolSpec | None:
    """The request's tools and tool_choice; None when no tool may be called (none given, or choice "none")."""
    raw, choice = body.get("tools"), body.get("tool_choice")
    if raw in (None, []):
        if choice not in (None, "none", "auto"):
            raise ApiError(400, "'tool_choice' needs 'tools'", param="tool_choice")
        return None
    if not isinstance(raw, list) or len(raw) > MAX_TOOLS:
        raise ApiError(400, f"'tools' must be a list of at most {MAX_TOOLS} functions", param="tools")
    tools = []
    for i, item in enumerate(raw):
        fn = item.get("function") if isinstance(item, dict) and item.get("type", "function") == "function" else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise ApiError(400, "each tool must be {'type': 'function', 'function': {'name', ...}}",
                           param=f"tools[{i}]")
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(params, dict):
            raise ApiError(400, "'parameters' must be a JSON schema object", param=f"tools[{i}].function.parameters")
        tools.append(Tool(fn["name"], str(fn.get("description") or ""), params))
    if len({t.name for t in tools}) != len(tools):
        raise ApiError(400, "tool names must be unique", param="tools")
    if choice in (None, "auto"):
        name = "auto"
    elif choice == "none":
        return None
    elif choice == "required":
        name = "required"
    elif isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        name = choice["function"]["name"]
        if name not in {t.name for t in tools}:
            raise ApiError(400, f"tool_choice names {name!r}, which is not in 'tools'", param="tool_choice")
    else:
        raise ApiError(400, "'tool_choice' must be 'none', 'auto', 'required' or {'type': 'function', "
                       "'function': {'name': ...}}", param="tool_choice")
    return ToolSpec(tuple(tools), name)


def with_tools(turns: list[dict[str, str]], spec: ToolSpec | None) -> list[dict[str, str]]:
    """The turns with the tools' description added to the system turn (one is created when there is none)."""
    if spec is None:
        return turns
    prompt = spec.system_prompt()
    if turns and turns[0]["role"] == "system":
        return [{"role": "system", "content": turns[0]["content"] + "\n\n" + prompt}, *turns[1:]]
    return [{"role": "system", "content": prompt}, *turns]


def call_text(calls: Any, index: int) -> str:
    """An assistant turn's ``tool_calls`` written as the call blocks the model generates."""
    if not isinstance(calls, list):
        raise ApiError(400, "'tool_calls' must be a list", param=f"messages[{index}].tool_calls")
    blocks = []
    for call in calls:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise ApiError(400, "each tool call needs a function name", param=f"messages[{index}].tool_calls")
        args = fn.get("arguments") or "{}"
        blocks.append(f'{OPEN}{{"name": {json.dumps(fn["name"])}, "arguments": {args}}}{CLOSE}')
    return "\n".join(blocks)


def tool_result_text(content: str) -> str:
    return f"<tool_response>\n{content}\n</tool_response>"


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def parse_call(text: str) -> tuple[str, str] | None:
    """(name, arguments JSON text) of a complete call block; None when ``text`` is not one."""
    match = _PREFIX.match(text)
    if match is None or not text.endswith(_SUFFIX):
        return None
    return json.loads(f'"{match.group(1)}"'), text[match.end():len(text) - len(_SUFFIX)]


class ToolCallStream:
    """Turns generated text pieces into chat deltas: ``{"content": ...}`` for text, or, once the output is a call
    block, ``{"tool_calls": [...]}`` deltas in the OpenAI shape (the name first, then the arguments as they come).

    The grammar guarantees the block's shape, so the arguments stream with only the closing ``}\\n</tool_call>``
    held back.
    """

    def __init__(self, spec: ToolSpec) -> None:
        self.spec = spec
        self.text = ""
        self.mode = "call" if spec.forced else ""  # "" undecided, "text", "call"
        self.call_id = new_call_id()
        self.name: str | None = None
        self.args_sent = 0  # characters of the text (after the prefix) sent as arguments

    def push(self, piece: str) -> list[dict[str, Any]]:
        self.text += piece
        if not self.mode and self.text:
            self.mode = "call" if self.text.startswith("<") else "text"
            if self.mode == "text":
                return [{"content": self.text}]
            piece = ""
        if self.mode == "text":
            return [{"content": piece}] if piece else []
        return self._call_deltas(final=False)

    def finish(self) -> list[dict[str, Any]]:
        return self._call_deltas(final=True) if self.mode == "call" else []

    @property
    def called(self) -> bool:
        return self.mode == "call" and parse_call(self.text) is not None

    def _call_deltas(self, final: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        match = _PREFIX.match(self.text)
        if match is None:
            return out
        if self.name is None:
            self.name = json.loads(f'"{match.group(1)}"')
            out.append({"tool_calls": [{"index": 0, "id": self.call_id, "type": "function",
                                        "function": {"name": self.name, "arguments": ""}}]})
        body = self.text[match.end():]
        if final and body.endswith(_SUFFIX):
            end = len(body) - len(_SUFFIX)
        else:
            end = len(body) if final else max(self.args_sent, len(body) - len(_SUFFIX))
        if end > self.args_sent:
            out.append({"tool_calls": [{"index": 0, "function": {"arguments": body[self.args_sent:end]}}]})
            self.args_sent = end
        return out


def message_of(text: str, spec: ToolSpec | None) -> tuple[dict[str, Any], bool]:
    """The assistant message for a whole (non-streamed) answer, and whether it is a tool call."""
    call = parse_call(text) if spec is not None else None
    if call is None:
        return {"role": "assistant", "content": text}, False
    name, args = call
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": new_call_id(), "type": "function", "function": {"name": name, "arguments": args}}]}, True
