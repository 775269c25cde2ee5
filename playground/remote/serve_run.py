"""One ``serve`` request carried out: for each prompt, the echoed prompt (scored when logprobs are asked), then its
completions, streamed as SSE chunks or gathered into one JSON answer. Choices are numbered prompt * n + completion.

``Waiter`` is what the HTTP handler lends: it waits for a Future, passing streamed events on and cancelling the
work when the client hangs up.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from playground.domain.jobs import Cancel
from playground.domain.score import ScoreItem, ScoreResult
from playground.domain.text import Completion, FinishReason, GenerationRequest, GenerationResult, TokenEvent
from playground.remote.api_error import ApiError, api_error, shutting_down
from playground.remote.tools import ToolCallStream, message_of
from playground.remote.wire import ParsedRequest
from playground.remote.wire_out import (
    chat_logprobs,
    completion_logprobs,
    finish_reason,
    joined,
    prompt_logprobs,
    usage_of,
)


class Waiter(Protocol):
    def wait(self, future: Future, events: Any | None = None, on_event: Callable[[Any], None] | None = None,
             cancel: Cancel | None = None) -> Any: ...

    def send_json(self, status: int, payload: dict[str, Any]) -> None: ...

    def start_stream(self) -> None: ...

    def write(self, text: str) -> None: ...


def run(parsed: ParsedRequest, app: Any, io: Waiter, cancel: Cancel) -> int:
    """Carry out ``parsed``; return the HTTP status for the log (499: the client left)."""
    out = _Output(parsed, app.name, io)
    prompt_tokens = 0
    completions: list[Completion] = []
    try:
        for p, req in enumerate(parsed.requests):
            score = _echo_score(parsed, req, app, io, cancel)
            echo = (score.text if score is not None else req.prompt) if parsed.echo else ""
            out.prompt(p, echo, score)
            result = None
            if parsed.generate:
                relay = _Relay()
                future = app.scheduler.generate(req, relay, cancel)
                result = io.wait(future, relay.queue, lambda e, p=p: out.token(p, e), cancel)
                app.finished.append(result)  # the last few (tests check that a disconnect cancelled one)
                del app.finished[:-8]
                if cancel.is_set():
                    if app.scheduler.closing:
                        raise shutting_down()
                    return 499
                completions.extend(result.completions)
            prompt_tokens += result.prompt_tokens if result is not None else (score.prompt_tokens if score else 0)
            out.done(p, result, echo, score)
    except Exception as exc:  # noqa: BLE001 - every failure reaches the client, as a JSON error or an error event
        err = api_error(exc)
        if not out.started:
            raise err from exc
        out.fail(err)
        return err.status
    out.finish(usage_of(prompt_tokens, completions))
    return 200


def _echo_score(parsed: ParsedRequest, req: GenerationRequest, app: Any, io: Waiter,
                cancel: Cancel) -> ScoreResult | None:
    """The prompt's tokens with their logprobs, when echoing them needs the model (logprobs, or token ids)."""
    if not parsed.echo or (parsed.logprobs is None and req.prompt_ids is None):
        return None
    item = ScoreItem(ids=req.prompt_ids) if req.prompt_ids is not None else ScoreItem(req.prompt)
    return io.wait(app.scheduler.score([item], parsed.logprobs or 0), cancel=cancel)[0]


class _Relay:
    """Engine events into a queue the handler thread drains (the engine thread never writes to a socket)."""

    def __init__(self) -> None:
        import queue

        self.queue: queue.Queue[TokenEvent] = queue.Queue()

    def __call__(self, event: TokenEvent) -> None:
        self.queue.put(event)


class _Output:
    """Choices for one request: streamed chunk by chunk, or gathered and sent whole at the end."""

    def __init__(self, parsed: ParsedRequest, model: str, io: Waiter) -> None:
        self.parsed, self.model, self.io = parsed, model, io
        self.chat = parsed.chat
        self.id = f"{'chatcmpl' if parsed.chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.started = False
        self.choices: list[dict[str, Any]] = []
        self.offsets: dict[int, int] = {}
        self.roles_sent: set[int] = set()
        self.tool_streams: dict[int, ToolCallStream] = {}

    def _index(self, prompt: int, completion: int) -> int:
        return prompt * self.parsed.n + completion

    # -- streaming -----------------------------------------------------------------------------------------------
    def _send(self, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> None:
        if not self.started:
            self.started = True
            self.io.start_stream()
        chunk: dict[str, Any] = {"id": self.id, "object": "chat.completion.chunk" if self.chat else "text_completion",
                                 "created": self.created, "model": self.model, "choices": choices}
        if usage is not None:
            chunk["usage"] = usage
        self.io.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n")

    def prompt(self, p: int, echo: str, score: ScoreResult | None) -> None:
        if not self.parsed.stream or not echo:
            return
        logprobs = prompt_logprobs(score) if score is not None and self.parsed.logprobs is not None else None
        self._send([{"index": self._index(p, i), "text": echo, "logprobs": logprobs, "finish_reason": None}
                    for i in range(self.parsed.n)])

    def token(self, p: int, e: TokenEvent) -> None:
        if not self.parsed.stream:
            return
        index, k = self._index(p, e.completion), self.parsed.logprobs
        if self.chat:
            self._role(index)
            deltas = self._tool_stream(index).push(e.text) if self.parsed.tools else [{"content": e.text}]
            for n, delta in enumerate(deltas or ([{}] if k is not None else [])):
                logprobs = chat_logprobs([e], k) if k is not None and n == 0 else None
                self._send([{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": None}])
            return
        offset = self.offsets.get(index, 0)
        self.offsets[index] = offset + len(e.text)
        self._send([{"index": index, "text": e.text, "logprobs": completion_logprobs([e], offset) if k is not None
                     else None, "finish_reason": None}])

    def _role(self, index: int) -> None:
        if index not in self.roles_sent:
            self.roles_sent.add(index)
            self._send([{"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                         "finish_reason": None}])

    def _tool_stream(self, index: int) -> ToolCallStream:
        if index not in self.tool_streams:
            self.tool_streams[index] = ToolCallStream(self.parsed.tools)  # type: ignore[arg-type]
        return self.tool_streams[index]

    def done(self, p: int, result: GenerationResult | None, echo: str, score: ScoreResult | None) -> None:
        completions = result.completions if result is not None else ()
        if not completions:  # max_tokens 0: the echo alone
            completions = tuple(Completion("", FinishReason.LENGTH, (), _no_timings()) for _ in
                                range(self.parsed.n))
        for i, c in enumerate(completions):
            index = self._index(p, i)
            if self.parsed.stream:
                self._stream_end(index, c)
            else:
                self.choices.append(self._whole(index, c, echo, score))

    def _stream_end(self, index: int, c: Completion) -> None:
        if not self.chat:
            reason = finish_reason(c.finish_reason)
            self._send([{"index": index, "text": "", "logprobs": None, "finish_reason": reason}])
            return
        self._role(index)
        called = False
        if self.parsed.tools:
            stream = self._tool_stream(index)
            for delta in stream.finish():
                self._send([{"index": index, "delta": delta, "logprobs": None, "finish_reason": None}])
            called = stream.called and c.finish_reason != FinishReason.LENGTH
        self._send([{"index": index, "delta": {}, "logprobs": None,
                     "finish_reason": finish_reason(c.finish_reason, called)}])

    def _whole(self, index: int, c: Completion, echo: str, score: ScoreResult | None) -> dict[str, Any]:
        events, k = list(c.tokens), self.parsed.logprobs
        if self.chat:
            message, called = message_of(c.text, self.parsed.tools)
            called = called and c.finish_reason != FinishReason.LENGTH
            if not called:
                message = {"role": "assistant", "content": c.text}
            return {"index": index, "message": message,
                    "logprobs": chat_logprobs(events, k) if k is not None else None,
                    "finish_reason": finish_reason(c.finish_reason, called)}
        logprobs = None
        if k is not None:
            generated = completion_logprobs(events, len(echo))
            logprobs = joined(prompt_logprobs(score) if score is not None else None, generated)
        return {"index": index, "text": echo + c.text, "logprobs": logprobs,
                "finish_reason": finish_reason(c.finish_reason)}

    def finish(self, usage: dict[str, int]) -> None:
        if self.parsed.stream:
            if self.parsed.include_usage:
                self._send([], usage)
            self.io.write("data: [DONE]\n\n")
            return
        kind = "chat.completion" if self.chat else "text_completion"
        self.io.send_json(200, {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                                "choices": self.choices, "usage": usage})

    def fail(self, err: ApiError) -> None:
        """An error after the stream began: an error event, and no [DONE] (clients see the stream as failed)."""
        try:
            self.io.write(f"data: {json.dumps(err.body())}\n\n")
        except OSError:
            pass


def _no_timings() -> Any:
    from playground.domain.text import Timings

    return Timings()
