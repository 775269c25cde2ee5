"""Admission of ``serve``'s requests onto the one device: a bounded number in the system (running + waiting), a
clear 503 with ``Retry-After`` beyond it, and a clean 503 for everything still waiting when the server stops.

Today each admitted request runs as its own jobs on the EngineRunner's single device thread (FIFO): concurrent
requests take turns, so 8 concurrent streams give about the throughput of one (``bench/serve_concurrency.py``).

Continuous batching fits here without changing the HTTP side: every request already gets a Future and a stream of
TokenEvents through ``generate``. To share decode steps, ``generate`` would put the request into a waiting deque
instead of submitting a job, and one long-running device job would loop: move waiting requests into the running
batch (prefill each), run one batched decode step for all running sequences (the fast path's batched decode, being
built on the ``engine`` branch), hand each sequence its token (its own sampling, stops, penalties and constraint
mask), and retire finished or cancelled ones, resolving their Futures. Admission and shutdown stay as below.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

from playground.domain.jobs import Cancel
from playground.domain.score import ScoreItem, ScoreResult
from playground.domain.text import GenerationRequest, GenerationResult, TokenEvent
from playground.remote.api_error import ApiError, shutting_down

DEFAULT_MAX_QUEUE = 64
RETRY_AFTER_S = 2


class Scheduler:
    def __init__(self, runner: Any, model_id: str, max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        self.runner = runner
        self.model_id = model_id
        self.max_queue = max_queue
        self.closing = False
        self._lock = threading.Lock()
        self._cancels: set[Cancel] = set()

    @property
    def in_system(self) -> int:
        """Requests admitted and not finished (running or waiting)."""
        with self._lock:
            return len(self._cancels)

    @contextlib.contextmanager
    def admit(self, cancel: Cancel) -> Iterator[None]:
        """Hold a place for one request while it runs; 503 when the server is full or stopping."""
        with self._lock:
            if self.closing:
                raise shutting_down()
            if len(self._cancels) >= self.max_queue:
                raise ApiError(503, f"the server is busy: {len(self._cancels)} requests are running or waiting "
                               f"(at most {self.max_queue}); retry in a few seconds", "server_error",
                               code="server_busy", headers={"Retry-After": str(RETRY_AFTER_S)})
            self._cancels.add(cancel)
        try:
            yield
        finally:
            with self._lock:
                self._cancels.discard(cancel)

    def generate(self, request: GenerationRequest, on_event: Callable[[TokenEvent], None],
                 cancel: Cancel) -> Future[GenerationResult]:
        return self.runner.generate(self.model_id, request, on_event, cancel)

    def score(self, items: Sequence[ScoreItem], top_logprobs: int) -> Future[list[ScoreResult]]:
        return self.runner.score(self.model_id, items, top_logprobs)

    def close(self) -> None:
        """Refuse new requests and cancel the admitted ones (each answers 503 "shutting down")."""
        with self._lock:
            self.closing = True
            cancels = list(self._cancels)
        for cancel in cancels:
            cancel.set()
