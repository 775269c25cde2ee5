"""A scripted runner for UI tests: the real seam (futures + callbacks on a worker thread), no model."""

from __future__ import annotations

import math
import time
from concurrent.futures import Future, ThreadPoolExecutor

from playground.domain.jobs import Cancel
from playground.domain.text import (
    Alternative,
    Completion,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    Timings,
    TokenEvent,
)
from playground.runtime.runner import LoadedInfo


class ScriptedRunner:
    def __init__(self, tokens: list[str], delay: float = 0.0, error: Exception | None = None) -> None:
        self.tokens = tokens
        self.delay = delay
        self.error = error
        self.requests: list[GenerationRequest] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-scripted")

    def load(self, model_id: str, on_progress=lambda e: None) -> Future:
        return self._pool.submit(LoadedInfo, model_id, "cpu", "float32", 0.01, 2048)

    def generate(self, model_id: str, request: GenerationRequest, on_token=lambda e: None,
                 cancel: Cancel | None = None, on_progress=lambda e: None) -> Future:
        self.requests.append(request)
        cancel = cancel or Cancel()
        return self._pool.submit(self._run, model_id, on_token, cancel)

    def _run(self, model_id: str, on_token, cancel: Cancel) -> GenerationResult:
        if self.error is not None:
            raise self.error
        events, finish = [], FinishReason.LENGTH
        for i, text in enumerate(self.tokens):
            if cancel.is_set():
                finish = FinishReason.CANCELLED
                break
            p = 0.9 if i % 2 == 0 else 0.1  # alternate likely / unlikely tokens
            top = (Alternative(text, i, math.log(p)), Alternative(" other", 10_000, math.log((1 - p) / 2)))
            event = TokenEvent(0, i, text, i, math.log(p), top)
            on_token(event)
            events.append(event)
            if self.delay:
                time.sleep(self.delay)
        completion = Completion("".join(e.text for e in events), finish, tuple(events), Timings(0.01, 0.01, 100.0))
        return GenerationResult(model_id, (completion,), seed=1, prompt_tokens=3)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
