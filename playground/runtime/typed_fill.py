"""Sheet fill with typed columns: a column typed "number" or "one of the values seen" only gets answers of that
shape. Its cells are generated one by one with the column's constraint (``tasks/constraints.column_constraint``)
as a mask at each step, locally or on a remote server that honours it; the other cells keep the batched filler.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from playground.domain.jobs import Cancel
from playground.domain.sheet import CellAnswer, CellFn, CellPrompt, FillResult
from playground.domain.text import Constraint, FinishReason, GenerationRequest
from playground.remote.fill import answer_from_tokens
from playground.runtime.dispatch import run_generation


class TypedFiller:
    def __init__(self, model: Any, base: Any, constraints: dict[int, Constraint], max_new_tokens: int,
                 top: int = 5) -> None:
        self.model, self.base, self.constraints = model, base, constraints
        self.max_new_tokens, self.top = max_new_tokens, top

    def fill(self, prompts: Sequence[CellPrompt], on_cell: CellFn = lambda a: None, cancel: Cancel | None = None,
             numeric_columns: Iterable[int] = ()) -> FillResult:
        """``SheetFiller.fill``'s contract: answers aligned with ``prompts``, ``on_cell`` as each finishes."""
        cancel = cancel or Cancel()
        numeric = frozenset(numeric_columns)
        started = time.perf_counter()
        free = [i for i, p in enumerate(prompts) if p.column not in self.constraints]
        typed = [i for i, p in enumerate(prompts) if p.column in self.constraints]
        answers: dict[int, CellAnswer] = {}
        tokens = 0

        def relay(answer: CellAnswer) -> None:
            answer = replace(answer, index=free[answer.index])
            answers[answer.index] = answer
            on_cell(answer)

        if free:
            result = self.base.fill([prompts[i] for i in free], relay, cancel, numeric)
            tokens += result.prompt_tokens
        for i in typed:
            if cancel.is_set():
                break
            p = prompts[i]
            request = GenerationRequest(prompt=p.query, source=p.prefix, max_new_tokens=self.max_new_tokens,
                                        temperature=0.0, stop=("\n",), seed=0, top_logprobs=self.top,
                                        constraint=self.constraints[p.column])
            result = run_generation(self.model, request, cancel=cancel)
            c = result.first if result.completions else None
            if c is None or c.finish_reason == FinishReason.CANCELLED:
                break
            tokens += result.prompt_tokens
            answers[i] = answer_from_tokens(i, p, c.text, [(t.text, t.logprob, t.top) for t in c.tokens],
                                            p.column in numeric)
            on_cell(answers[i])
        ordered = tuple(answers.get(i) for i in range(len(prompts)))
        return FillResult(getattr(self.model, "id", ""), ordered, cancelled=len(answers) < len(prompts),
                          seconds=time.perf_counter() - started, prompt_tokens=tokens)
