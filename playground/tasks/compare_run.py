"""Running a comparison: local columns one after another on the one device, models swapped through a ModelPool;
columns of one local model on a fast runner decode together (one batched step per token over their cache slots:
``runtime.dispatch.run_generations``); remote columns (``remote:`` models, which need no device) at the same time,
a few requests in flight.

Shared by the CLI and the Compare tab's worker thread. Callbacks run on the calling (worker) thread for local
columns, on short-lived ``engine-batch`` threads for columns decoding together and ``engine-remote`` threads for
remote ones, so they must be thread-safe (Qt signal emits are).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from playground.domain.jobs import Cancel, ProgressEvent
from playground.domain.models import is_remote
from playground.domain.text import GenerationResult, TokenEvent
from playground.errors import KnownError
from playground.runtime.dispatch import can_batch, load_model, run_generation, run_generations
from playground.runtime.model_pool import ModelPool
from playground.tasks.compare import resolve

REMOTE_CONCURRENCY = 4  # remote columns in flight at once


@dataclass(frozen=True)
class ColumnOutcome:
    """One column's end: a result (possibly cancelled, with its partial text) or an error message."""

    index: int
    model: str
    result: GenerationResult | None = None
    error: str | None = None
    request: Any = None  # the GenerationRequest that ran

    def to_json(self) -> dict[str, Any]:
        """The ``complete --json`` object, or ``{"model", "error"}`` for a column that failed."""
        if self.result is not None:
            return self.result.to_json()
        return {"model": self.model, "error": self.error or "not run"}


def run_columns(pool: ModelPool, columns: list[dict[str, Any]], defaults: dict[str, Any], source: str,
                prompt: str, cancel: Cancel | None = None,
                on_start: Callable[[int, str], None] = lambda i, m: None,
                on_token: Callable[[int, TokenEvent], None] = lambda i, e: None,
                on_done: Callable[[ColumnOutcome], None] = lambda o: None,
                on_progress: Callable[[ProgressEvent], None] = lambda e: None,
                only: set[int] | None = None, concurrent_remote: bool = True,
                together: bool = True) -> list[ColumnOutcome]:
    """Generate each column (or just those in ``only``); a failing column does not stop the others, a cancel
    does (the running columns keep their partial output, the rest are reported as cancelled). Remote columns run
    concurrently unless ``concurrent_remote`` is False, local columns of one fast-path model decode together
    unless ``together`` is False (their tokens interleave). Returns the outcomes in column order."""
    cancel = cancel or Cancel()
    chosen = [i for i in range(len(columns)) if only is None or i in only]
    model_of = {i: str(columns[i].get("model") or defaults.get("model") or "") for i in chosen}

    def run_one(i: int, remote: bool) -> ColumnOutcome:
        model_id = model_of[i]
        if cancel.is_set():
            outcome = ColumnOutcome(i, model_id, error="cancelled before it started")
        else:
            on_start(i, model_id)
            try:
                model_id, request = resolve(columns[i], defaults, source, prompt)
                # Remote models hold nothing, so they skip the (single-threaded) pool.
                tm = load_model(model_id, on_progress=on_progress) if remote else pool.get(model_id, on_progress)
                result = run_generation(tm, request, lambda e, i=i: on_token(i, e), cancel)
                outcome = ColumnOutcome(i, model_id, result=result, request=request)
            except KnownError as exc:
                outcome = ColumnOutcome(i, model_id, error=str(exc))
        on_done(outcome)
        return outcome

    def run_local(i: int) -> None:
        if i in outcomes:
            return
        same = [j for j in chosen if model_of[j] == model_of[i] and not is_remote(model_of[j]) and j not in outcomes]
        if together and len(same) > 1 and not cancel.is_set():
            try:
                tm = pool.get(model_of[i], on_progress)
            except KnownError:
                tm = None
            if tm is not None and can_batch(tm):
                outcomes.update(_run_together(tm, same, columns, defaults, source, prompt, cancel, on_start,
                                              on_token, on_done))
                return
        outcomes[i] = run_one(i, False)

    remote = [i for i in chosen if is_remote(model_of[i])] if concurrent_remote else []
    outcomes: dict[int, ColumnOutcome] = {}
    if not remote:
        for i in chosen:
            if is_remote(model_of[i]):
                outcomes[i] = run_one(i, True)
            else:
                run_local(i)
        return [outcomes[i] for i in chosen]
    with ThreadPoolExecutor(max_workers=min(REMOTE_CONCURRENCY, len(remote)),
                            thread_name_prefix="engine-remote") as threads:
        futures = {i: threads.submit(run_one, i, True) for i in remote}
        for i in chosen:  # local columns meanwhile, one model after another on this thread (the device's)
            if i not in futures:
                run_local(i)
        for i, future in futures.items():
            outcomes[i] = future.result()
    return [outcomes[i] for i in chosen]


def _run_together(tm: Any, indices: list[int], columns: list[dict[str, Any]], defaults: dict[str, Any],
                  source: str, prompt: str, cancel: Cancel, on_start: Callable[[int, str], None],
                  on_token: Callable[[int, TokenEvent], None],
                  on_done: Callable[[ColumnOutcome], None]) -> dict[int, ColumnOutcome]:
    """Columns ``indices`` of one loaded fast-path model, decoding together; outcomes by column index."""
    outcomes: dict[int, ColumnOutcome] = {}
    requests, ran = [], []
    for i in indices:
        on_start(i, tm.id)
        try:
            _, request = resolve(columns[i], defaults, source, prompt)
        except KnownError as exc:
            outcomes[i] = ColumnOutcome(i, tm.id, error=str(exc))
            on_done(outcomes[i])
            continue
        requests.append(request)
        ran.append(i)

    def done(k: int, result: GenerationResult | None, error: BaseException | None) -> None:
        i = ran[k]
        if error is not None and not isinstance(error, KnownError):
            return  # a bug: raised below, on the caller's thread
        outcomes[i] = ColumnOutcome(i, tm.id, result=result, request=requests[k]) if error is None else \
            ColumnOutcome(i, tm.id, error=str(error))
        on_done(outcomes[i])

    results = run_generations(tm, requests, lambda k, e: on_token(ran[k], e), done, cancel)
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, KnownError):
            raise r
    return outcomes
