"""Sheet cells from a remote server: one greedy ``/v1/completions`` request per cell (stop at the newline, top-5
logprobs), a few in flight at once. Same ``fill`` contract and CellAnswers as the local ``SheetFiller``.

Confidence is the product of the answer's token probabilities, as locally; None when the server sent no logprobs
(shown as "—", "not provided by this server"). No KV-cache sharing is possible over the wire, so the server's own
prefix caching (vLLM, SGLang, llama.cpp all have one) is what makes the shared example rows cheap.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from playground.domain.jobs import Cancel
from playground.domain.sheet import AnswerToken, CellAnswer, CellFn, CellPrompt, FillResult, clean_answer, guesses
from playground.domain.text import GenerationRequest
from playground.remote.backend import RemoteTextModel, generate_remote

DEFAULT_CONCURRENCY = 4


class _Linked(Cancel):
    """Set when the caller's Cancel is, or when this fill stops itself (a cell failed)."""

    def __init__(self, parent: Cancel) -> None:
        super().__init__()
        self._parent = parent

    def is_set(self) -> bool:
        return super().is_set() or self._parent.is_set()


class RemoteSheetFiller:
    """Fills cells with a RemoteTextModel; ``on_cell`` is called on the calling thread, as cells finish."""

    def __init__(self, rm: RemoteTextModel, concurrency: int = DEFAULT_CONCURRENCY, max_new_tokens: int = 24,
                 top: int = 5) -> None:
        self.rm = rm
        self.concurrency = max(1, concurrency)
        self.max_new_tokens = max(1, max_new_tokens)
        self.top = top

    def fill(self, prompts: Sequence[CellPrompt], on_cell: CellFn = lambda a: None, cancel: Cancel | None = None,
             numeric_columns: Iterable[int] = ()) -> FillResult:
        """Complete every prompt; answers aligned with ``prompts`` (None where stopped before the cell). The first
        failing cell stops the others and its error is raised (cells already answered were reported)."""
        cancel = cancel or Cancel()
        stop = _Linked(cancel)
        numeric = frozenset(numeric_columns)
        started = time.perf_counter()
        answers: dict[int, CellAnswer] = {}
        usage = [0]
        lock = threading.Lock()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="engine-remote-cell") as pool:
            pending: set[Future] = set()
            queue = list(enumerate(prompts))
            queue.reverse()
            try:
                while queue or pending:
                    while queue and len(pending) < self.concurrency and not stop.is_set():
                        i, prompt = queue.pop()
                        pending.add(pool.submit(self._cell, i, prompt, prompt.column in numeric, stop, usage, lock))
                    if not pending:
                        break
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        answer = future.result()
                        if answer is not None:
                            answers[answer.index] = answer
                            on_cell(answer)
            except BaseException:
                stop.set()  # the other cells in flight close their connections at once
                raise
        ordered = tuple(answers.get(i) for i in range(len(prompts)))
        return FillResult(self.rm.id, ordered, cancelled=len(answers) < len(prompts),
                          seconds=time.perf_counter() - started, prompt_tokens=usage[0])

    def _cell(self, index: int, prompt: CellPrompt, numeric: bool, stop: Cancel, usage: list[int],
              lock: threading.Lock) -> CellAnswer | None:
        if stop.is_set():
            return None
        request = GenerationRequest(prompt=prompt.query, source=prompt.prefix, max_new_tokens=self.max_new_tokens,
                                    temperature=0.0, stop=("\n",), seed=0, top_logprobs=self.top)
        result = generate_remote(self.rm, request, cancel=stop)
        completion = result.first
        if completion.finish_reason == "cancelled":
            return None
        with lock:
            usage[0] += result.prompt_tokens
        return answer_from_tokens(index, prompt, completion.text,
                                  [(t.text, t.logprob, t.top) for t in completion.tokens], numeric)


def answer_from_tokens(index: int, prompt: CellPrompt, text: str,
                       tokens: Sequence[tuple[str, float | None, Sequence]], numeric: bool) -> CellAnswer:
    """A CellAnswer from a completion's (text, logprob, top alternatives) tokens, up to the first newline."""
    raw = text.split("\n", 1)[0]
    kept: list[AnswerToken] = []
    logprobs: list[float | None] = []
    spelled = ""
    held: float | None = 0.0  # tokens with no text (a character's first bytes) count with the one completing it
    for piece, logprob, top in tokens:
        if len(spelled) >= len(raw):
            break
        held = None if held is None or logprob is None else held + logprob
        piece = piece.split("\n", 1)[0]
        if not piece:
            continue
        spelled += piece
        alts = tuple((a.text, math.exp(a.logprob)) for a in top)
        kept.append(AnswerToken(piece, None if held is None else math.exp(held), alts))
        logprobs.append(held)
        held = 0.0
    value = clean_answer(raw, numeric)
    known = [lp for lp in logprobs if lp is not None]
    if not value:
        confidence: float | None = 0.0  # as locally: an empty answer gets 0
    elif logprobs and len(known) == len(logprobs):
        confidence = min(1.0, max(0.0, math.exp(sum(known))))
    else:
        confidence = None  # not provided by this server
    top = guesses(kept, known) if confidence is not None and kept else ()
    return CellAnswer(index, prompt.row, prompt.column, raw.strip(), value, confidence, tuple(kept), top)
