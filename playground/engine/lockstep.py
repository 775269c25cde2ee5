"""Several generations on one fast runner at once: each request decodes in its own cache slot, and their decode
steps run together, one runner ``step`` over all their slots per token (Compare's columns of one model).

Each request runs the ordinary generation loop (``generate.generate``: sampling, stops, constraints, events all
unchanged) on its own thread, over a view of the runner that maps slot 0 to the request's slot. A view's ``step``
waits until every request still running has asked for its next token, then the last one to ask runs the batched
step for all (the kernels read each weight once for the batch). Only one thread touches the runner at a time
(prefills run under the same lock), so this is batching, not parallelism.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from playground.domain.jobs import Cancel
from playground.domain.text import GenerationRequest, GenerationResult, TokenEvent

if TYPE_CHECKING:
    from playground.engine.text import TextModel

FIRST_SLOT = 1  # slot 0 stays the prompt tab's (its cached prompt is kept for prefix reuse)


class _Lockstep:
    def __init__(self, runner: Any, n: int) -> None:
        self.runner = runner
        self.cv = threading.Condition(threading.RLock())
        self.running = n  # requests not finished yet
        self.pending: dict[int, int] = {}  # slot -> token waiting for the next batched step
        self.results: dict[int, Any] = {}
        self.error: BaseException | None = None
        self.widths: list[int] = []  # rows of each batched step (tests, benches)

    def step(self, slot: int, token: int) -> Any:
        with self.cv:
            self.pending[slot] = token
            self._run_if_ready()
            while slot not in self.results and self.error is None:
                self.cv.wait()
            if self.error is not None:
                raise RuntimeError("a batched decode step failed") from self.error
            return self.results.pop(slot)

    def finished(self) -> None:
        with self.cv:
            self.running -= 1
            self._run_if_ready()

    def _run_if_ready(self) -> None:
        if not self.pending or len(self.pending) < self.running:
            return
        slots = sorted(self.pending)
        tokens = [self.pending[s] for s in slots]
        self.pending.clear()
        try:
            out = self.runner.step(tokens, slots)
        except BaseException as exc:
            self.error = exc
            self.cv.notify_all()
            raise
        self.widths.append(len(slots))
        self.results.update({s: out[i:i + 1] for i, s in enumerate(slots)})
        self.cv.notify_all()


class _SlotView:
    """The runner as ``generate`` sees it: slot 0 is ``slot``; steps go through the lockstep."""

    def __init__(self, lockstep: _Lockstep, slot: int) -> None:
        self._ls, self._slot = lockstep, slot

    def prefill(self, slot: int, ids: list[int], reuse: bool = True, checkpoints: tuple[int, ...] = ()) -> Any:
        with self._ls.cv:
            return self._ls.runner.prefill(self._slot, ids, reuse, checkpoints=checkpoints)

    def rewind(self, length: int, slot: int = 0) -> None:
        with self._ls.cv:
            self._ls.runner.rewind(length, self._slot)

    def step(self, tokens: list[int], slots: list[int]) -> Any:
        return self._ls.step(self._slot, tokens[0])

    def __getattr__(self, name: str) -> Any:  # path, precision, max_positions, ...
        return getattr(self._ls.runner, name)


def generate_together(tm: TextModel, requests: Sequence[GenerationRequest],
                      on_event: Callable[[int, TokenEvent], None] = lambda i, e: None,
                      on_done: Callable[[int, GenerationResult | None, BaseException | None], None] =
                      lambda i, r, e: None, cancel: Cancel | None = None,
                      widths: list[int] | None = None) -> list[Any]:
    """``generate`` for each request, decoding together on ``tm.fast``; returns a GenerationResult or the
    exception each raised (in order). ``on_done`` is called as each one ends (on its thread); ``widths`` gets
    the number of rows of every batched step."""
    from playground.engine.generate import generate

    cancel = cancel or Cancel()
    runner = tm.fast
    runner.ensure_slots(FIRST_SLOT + len(requests))
    lockstep = _Lockstep(runner, len(requests))
    outcomes: list[Any] = [None] * len(requests)

    def run(i: int) -> None:
        view_tm = dataclasses.replace(tm, fast=_SlotView(lockstep, FIRST_SLOT + i))
        result = error = None
        try:
            result = generate(view_tm, requests[i], lambda e: on_event(i, e), cancel)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller, per request
            error = exc
        finally:
            lockstep.finished()
        outcomes[i] = result if error is None else error
        on_done(i, result, error)

    threads = [threading.Thread(target=run, args=(i,), name=f"engine-batch-{i}") for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if widths is not None:
        widths.extend(lockstep.widths)
    return outcomes
