"""Complete many sheet cells fast: one prefill per shared prompt prefix, then independent cells in a batch.

Cells whose prompts share their example rows (``CellPrompt.examples``) form a group. The group's prefix is
prefilled once into a KV cache; each batch of cells gets a copy of it, repeated along the batch dimension, and
its own query (the target row) appended. Queries differ in length, so they are left-padded *after* the prefix:

    row 0: [prefix ........][pad pad][State: Ohio\\nPopulation:]
    row 1: [prefix ........][State: New Mexico\\nPopulation:    ]

with an attention mask that hides the pads and explicit position ids that skip them, so each row sees exactly
what it would see alone. Decoding is greedy, stops at the end of the line, and drops finished rows from the
batch. Qt-free: the UI runs it on its own worker thread.

On the fast path (``tm.fast``: the fused runner at the model's precision) the prefix is prefilled once into slot 0
and forked into one cache slot per cell; the cells' queries, then their answers, run together, one ``step`` over
all their slots per token (the kernels read each weight once for the whole batch).

Confidence of an answer = the product of its tokens' probabilities, i.e. ``exp(sum of logprobs)`` of the greedy
answer up to (not including) the newline, under the model's own distribution.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from playground.domain.jobs import Cancel
from playground.domain.sheet import (
    AnswerToken,
    CellAnswer,
    CellFn,
    CellPrompt,
    FillResult,
    Guess,
    clean_answer,
    guesses,
)
from playground.engine.device import free_memory
from playground.engine.generate import ANCHOR_TOKENS, cache_kwarg
from playground.engine.sampling import greedy_tokens
from playground.errors import ContextOverflow, OutOfMemory

if TYPE_CHECKING:
    from playground.engine.text import TextModel

DEFAULT_BATCH = 8
DEFAULT_MAX_NEW_TOKENS = 24  # a cell value is a few words or a number



class SheetFiller:
    """Fills cells with one loaded TextModel; call from a single worker thread."""

    def __init__(self, tm: TextModel, batch_size: int = DEFAULT_BATCH,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, top: int = 5) -> None:
        self.tm = tm
        self.batch_size = max(1, batch_size)
        self.max_new_tokens = max(1, max_new_tokens)
        self.top = top
        self._pad_id = next((i for i in (tm.tokenizer.pad_token_id, tm.tokenizer.eos_token_id) if i is not None), 0)

    def fill(self, prompts: Sequence[CellPrompt], on_cell: CellFn = lambda a: None, cancel: Cancel | None = None,
             numeric_columns: Iterable[int] = ()) -> FillResult:
        """Complete every prompt; ``on_cell`` is called as each cell finishes (cells of one batch finish in
        the order their answers end). Returns the answers aligned with ``prompts``."""
        import torch

        cancel = cancel or Cancel()
        numeric = frozenset(numeric_columns)
        started = time.perf_counter()
        answers: dict[int, CellAnswer] = {}
        counted = [0]
        try:
            with torch.inference_mode():
                for indices in _groups(prompts):
                    if cancel.is_set():
                        break
                    self._fill_group([prompts[i] for i in indices], indices, answers, on_cell, cancel, numeric,
                                     counted)
        except torch.OutOfMemoryError as exc:
            free_memory(self.tm.device)
            raise OutOfMemory(f"Out of memory on {self.tm.device} while filling cells; memory was freed. "
                              "Fill fewer cells at once or use a smaller model") from exc
        ordered = tuple(answers.get(i) for i in range(len(prompts)))
        return FillResult(self.tm.id, ordered, cancelled=len(answers) < len(prompts),
                          seconds=time.perf_counter() - started, prompt_tokens=counted[0],
                          engine=f"{self.tm.precision} · {self.tm.path}")

    # -- one group: a shared prefix ----------------------------------------------------------------------------
    def _fill_group(self, group: list[CellPrompt], indices: list[int], answers: dict[int, CellAnswer],
                    on_cell: CellFn, cancel: Cancel, numeric: frozenset[int], counted: list[int]) -> None:
        tm = self.tm
        queries = [self._encode(p.query, special=False) for p in group]
        longest = max(len(q) for q in queries)
        examples = list(group[0].examples)
        prefix_ids = self._encode("".join(examples), special=True) if examples else []
        # Drop the oldest example rows until prefix + query + answer fits the context window.
        while examples and len(prefix_ids) + longest + self.max_new_tokens > tm.context_length:
            examples.pop(0)
            prefix_ids = self._encode("".join(examples), special=True) if examples else []
        if not prefix_ids:
            queries = [self._encode(p.query, special=True) for p in group]
            longest = max(len(q) for q in queries)
        if len(prefix_ids) + longest + 1 > tm.context_length:
            raise ContextOverflow(f"A row's prompt is {longest} tokens but {tm.id} reads at most "
                                  f"{tm.context_length}; shorten the cells or use fewer columns")
        counted[0] += len(prefix_ids)
        if tm.fast is not None:
            for start in range(0, len(group), self.batch_size):
                if cancel.is_set():
                    return
                chunk = list(range(start, min(start + self.batch_size, len(group))))
                counted[0] += sum(len(queries[i]) for i in chunk)
                self._run_batch_fast([group[i] for i in chunk], [indices[i] for i in chunk],
                                     [queries[i] for i in chunk], prefix_ids, answers, on_cell, cancel, numeric)
            return
        prefix_cache = self._prefill(prefix_ids) if prefix_ids else None
        for start in range(0, len(group), self.batch_size):
            if cancel.is_set():
                return
            chunk = list(range(start, min(start + self.batch_size, len(group))))
            counted[0] += sum(len(queries[i]) for i in chunk)
            self._run_batch([group[i] for i in chunk], [indices[i] for i in chunk], [queries[i] for i in chunk],
                            prefix_cache, len(prefix_ids), answers, on_cell, cancel, numeric)

    def _prefill(self, ids: list[int]) -> Any:
        import torch
        from transformers import DynamicCache

        cache = DynamicCache(config=self.tm.model.config)
        self.tm.model(input_ids=torch.tensor([ids], device=self.tm.device), use_cache=True, logits_to_keep=1,
                      **{cache_kwarg(self.tm.model): cache})
        return cache

    def _run_batch(self, prompts: list[CellPrompt], indices: list[int], queries: list[list[int]],
                   prefix_cache: Any, prefix_len: int, answers: dict[int, CellAnswer], on_cell: CellFn,
                   cancel: Cancel, numeric: frozenset[int]) -> None:
        import torch
        from transformers import DynamicCache

        tm = self.tm
        b = len(prompts)
        width = max(len(q) for q in queries)
        if prefix_cache is not None:
            cache = copy.deepcopy(prefix_cache)
            if b > 1:
                cache.batch_repeat_interleave(b)
        else:
            cache = DynamicCache(config=tm.model.config)
        ids = torch.full((b, width), self._pad_id, dtype=torch.long)  # (B, L)
        mask = torch.zeros((b, prefix_len + width), dtype=torch.long)  # (B, P + L)
        mask[:, :prefix_len] = 1
        positions = torch.full((b, width), prefix_len, dtype=torch.long)  # pads sit anywhere: they are masked
        for i, q in enumerate(queries):
            ids[i, width - len(q):] = torch.tensor(q)
            mask[i, prefix_len + width - len(q):] = 1
            positions[i, width - len(q):] = torch.arange(prefix_len, prefix_len + len(q))
        next_pos = positions[:, -1] + 1  # (B,)
        kwarg = cache_kwarg(tm.model)
        out = tm.model(input_ids=ids.to(tm.device), attention_mask=mask.to(tm.device),
                       position_ids=positions.to(tm.device), use_cache=True, logits_to_keep=1, **{kwarg: cache})
        logits = out.logits[:, -1].float().cpu()  # (B, vocab)

        rows = list(range(b))  # batch row -> index into prompts, for the rows still decoding
        state = [_Decoding(tm, q) for q in queries]
        for step in range(self.max_new_tokens):
            if cancel.is_set():
                return
            logprobs = torch.log_softmax(logits, dim=-1)  # (B_active, vocab)
            tokens = greedy_tokens(logprobs)
            top_lp, top_ids = torch.topk(logprobs, self.top, dim=-1) if self.top else (None, None)
            keep: list[int] = []
            for j, i in enumerate(rows):
                top = () if top_ids is None else tuple(
                    (tm.tokenizer.decode([t]), math.exp(v))
                    for t, v in zip(top_ids[j].tolist(), top_lp[j].tolist(), strict=True))
                done = state[i].push(tokens[j], float(logprobs[j, tokens[j]]), top)
                if done or step == self.max_new_tokens - 1:
                    p = prompts[i]
                    answer = state[i].answer(indices[i], p.row, p.column, p.column in numeric)
                    answers[indices[i]] = answer
                    on_cell(answer)
                else:
                    keep.append(j)
            if not keep:
                return
            if len(keep) < len(rows):
                cache.batch_select_indices(torch.tensor(keep, device=tm.device))
                mask, next_pos = mask[keep], next_pos[keep]
                tokens = [tokens[j] for j in keep]
                rows = [rows[j] for j in keep]
            mask = torch.cat([mask, torch.ones((len(rows), 1), dtype=torch.long)], dim=1)
            out = tm.model(input_ids=torch.tensor(tokens, device=tm.device).unsqueeze(1),
                           attention_mask=mask.to(tm.device), position_ids=next_pos.unsqueeze(1).to(tm.device),
                           use_cache=True, **{kwarg: cache})
            logits = out.logits[:, -1].float().cpu()  # (B_active, vocab)
            next_pos = next_pos + 1

    def _run_batch_fast(self, prompts: list[CellPrompt], indices: list[int], queries: list[list[int]],
                        prefix_ids: list[int], answers: dict[int, CellAnswer], on_cell: CellFn, cancel: Cancel,
                        numeric: frozenset[int]) -> None:
        """The batch on the fast runner: slot 0 holds the prefix, slot 1 + j the j-th cell. The queries (a row
        each, a few tokens) run through decode steps of all the cells at once: a separate prefill per cell reads
        every weight once per cell (measured 6x slower on the embedded model, bench/sheet_fill.py)."""
        import torch

        fast = self.tm.fast
        fast.ensure_slots(1 + len(queries))
        if prefix_ids:
            fast.prefill(0, prefix_ids)
        for j in range(len(queries)):
            if prefix_ids:
                fast.fork(0, 1 + j, len(prefix_ids))
            else:
                fast.rewind(0, 1 + j)
        pending = [list(q) for q in queries]
        rows: list[Any] = [None] * len(queries)
        while any(pending):
            feeding = [j for j, q in enumerate(pending) if q]
            out = fast.step([pending[j].pop(0) for j in feeding], [1 + j for j in feeding])
            for k, j in enumerate(feeding):
                if not pending[j]:
                    rows[j] = out[k]
        logits = torch.stack(rows)  # (B, vocab)
        active = list(range(len(prompts)))  # batch rows still decoding
        state = [_Decoding(self.tm, q) for q in queries]
        for step in range(self.max_new_tokens):
            if cancel.is_set():
                return
            tokens = self._push_step(logits, active, state, prompts, indices, answers, on_cell, numeric,
                                     last=step == self.max_new_tokens - 1)
            if not tokens:
                return
            active = [i for i, _ in tokens]
            logits = fast.step([t for _, t in tokens], [1 + i for i in active])

    def _push_step(self, logits: Any, active: list[int], state: list[_Decoding], prompts: list[CellPrompt],
                   indices: list[int], answers: dict[int, CellAnswer], on_cell: CellFn, numeric: frozenset[int],
                   last: bool) -> list[tuple[int, int]]:
        """Greedy tokens for the active rows; finished cells are answered. Returns (row, token) still going."""
        import torch

        tm = self.tm
        logprobs = torch.log_softmax(logits.float(), dim=-1)  # (B_active, vocab)
        tokens = greedy_tokens(logprobs)
        top_lp, top_ids = torch.topk(logprobs, self.top, dim=-1) if self.top else (None, None)
        going = []
        for j, i in enumerate(active):
            top = () if top_ids is None else tuple(
                (tm.tokenizer.decode([t]), math.exp(v))
                for t, v in zip(top_ids[j].tolist(), top_lp[j].tolist(), strict=True))
            done = state[i].push(tokens[j], float(logprobs[j, tokens[j]]), top)
            if done or last:
                p = prompts[i]
                answer = state[i].answer(indices[i], p.row, p.column, p.column in numeric)
                answers[indices[i]] = answer
                on_cell(answer)
            else:
                going.append((i, tokens[j]))
        return going

    def _encode(self, text: str, special: bool) -> list[int]:
        return list(self.tm.tokenizer(text, add_special_tokens=special)["input_ids"])


class _Decoding:
    """One cell's answer as it is decoded: text so far (spaces right, via the prompt's last tokens)."""

    def __init__(self, tm: TextModel, query_ids: list[int]) -> None:
        self.tm = tm
        self.anchor = query_ids[-ANCHOR_TOKENS:]
        self.anchor_text = tm.tokenizer.decode(self.anchor)
        self.ids: list[int] = []
        self.tokens: list[AnswerToken] = []
        self.logprobs: list[float] = []
        self.text = ""
        self._held = 0.0  # logprob of the first bytes of an unfinished character

    def push(self, token: int, logprob: float, top: tuple[tuple[str, float], ...]) -> bool:
        """Add a greedy token; return True when the answer is complete (end of line or end of text)."""
        if token in self.tm.eos_ids:
            return True
        before = self.text
        self.ids.append(token)
        full = self.tm.tokenizer.decode(self.anchor + self.ids)[len(self.anchor_text):]
        if full.endswith("\ufffd"):
            # An unfinished multi-byte character: the next token completes it and carries its bytes' probability.
            self._held += logprob
            return False
        logprob, self._held = logprob + self._held, 0.0
        piece = full[len(before):]
        if "\n" in piece:
            kept = piece.split("\n", 1)[0]
            if kept.strip():  # the token carried part of the answer before the newline: it counts
                self.tokens.append(AnswerToken(kept, math.exp(logprob), top))
                self.logprobs.append(logprob)
                self.text = before + kept
            return True
        self.tokens.append(AnswerToken(piece, math.exp(logprob), top))
        self.logprobs.append(logprob)
        self.text = full
        return False

    def answer(self, index: int, row: int, column: int, numeric: bool) -> CellAnswer:
        value = clean_answer(self.text, numeric)
        confidence = math.exp(sum(self.logprobs)) if value else 0.0
        return CellAnswer(index, row, column, self.text.strip(), value, min(1.0, max(0.0, confidence)),
                          tuple(self.tokens), self._guesses())

    def _guesses(self) -> tuple[Guess, ...]:
        return guesses(self.tokens, self.logprobs)


def _groups(prompts: Sequence[CellPrompt]) -> list[list[int]]:
    """Indices of prompts grouped by their shared prefix, groups in order of first appearance."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(p.examples, []).append(i)
    return list(groups.values())
