"""The generation loop: one prefill over the prompt, then one forward per token over a KV cache.

Written by hand (gpt-fast style) rather than wrapping ``model.generate``: per-token log-probabilities,
alternatives, cancellation and stop sequences fall out of it directly.
"""

from __future__ import annotations

import copy
import functools
import inspect
import random
import time
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from playground.domain.jobs import Cancel
from playground.domain.stream import StopAssembler
from playground.domain.text import (
    Alternative,
    Completion,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    Timings,
    TokenEvent,
)
from playground.engine.device import free_memory
from playground.engine.sampling import NgramBan, pick_token, top_k
from playground.engine.token_bytes import token_bytes
from playground.errors import ContextOverflow, KnownError, OutOfMemory, ParameterError

if TYPE_CHECKING:
    import torch

    from playground.engine.text import TextModel

EventFn = Callable[[TokenEvent], None]
ANCHOR_TOKENS = 4  # prompt tokens decoded with the output so word-initial spaces come out right


def generate(tm: TextModel, req: GenerationRequest, on_event: EventFn = lambda e: None,
             cancel: Cancel | None = None) -> GenerationResult:
    """Complete ``req.source + req.prompt`` ``req.n`` times, streaming a TokenEvent per token."""
    import torch

    req.validate()
    cancel = cancel or Cancel()
    seed = req.seed if req.seed is not None else random.randrange(2**31)
    chat = bool(req.messages) and tm.has_chat_template and req.prompt_ids is None
    prompt_ids = prompt_tokens(tm, req)
    budget = tm.context_length - len(prompt_ids)
    if budget <= 0:
        raise ContextOverflow(
            f"The prompt is {len(prompt_ids)} tokens but {tm.id} reads at most {tm.context_length}; "
            "shorten the source text or the prompt")
    if not req.cap_to_context and req.max_new_tokens > budget:
        raise ContextOverflow(
            f"{tm.id} reads at most {tm.context_length} tokens, but {len(prompt_ids) + req.max_new_tokens} were "
            f"asked for ({len(prompt_ids)} in the prompt, {req.max_new_tokens} to generate); lower max tokens or "
            "shorten the prompt")
    completions = []
    try:
        with torch.inference_mode():
            started = time.perf_counter()
            steppers = _steppers(tm, prompt_ids, req.n, _checkpoints(tm, req, chat, prompt_ids))
            for i in range(req.n):
                step, logits = next(steppers)
                completions.append(_decode(tm, req, i, seed + i, prompt_ids, step, logits, budget,
                                           on_event, cancel, started))
                started = time.perf_counter()
                if cancel.is_set():
                    break
    except torch.OutOfMemoryError as exc:
        free_memory(tm.device)
        raise OutOfMemory(f"Out of memory on {tm.device} while generating; memory was freed. "
                          "Lower max tokens or n, or use a smaller model") from exc
    return GenerationResult(model=tm.id, completions=tuple(completions), seed=seed,
                            prompt_tokens=len(prompt_ids), device=str(tm.device), chat=chat)


def prompt_tokens(tm: TextModel, req: GenerationRequest) -> list[int]:
    """The token ids the model reads for ``req``: its token prompt, its chat turns through the model's template,
    or source + prompt."""
    if req.prompt_ids is not None:
        vocab = tm.vocab_size or len(tm.tokenizer)
        if max(req.prompt_ids) >= vocab:
            raise ParameterError(f"token ids must be between 0 and {vocab - 1}")
        return list(req.prompt_ids)
    if req.messages and tm.has_chat_template:
        return _encode_chat(tm, req.messages)
    return _encode(tm, req.text)


def _encode(tm: TextModel, text: str) -> list[int]:
    ids = list(tm.tokenizer(text, add_special_tokens=True)["input_ids"])
    if not ids:
        bos = tm.tokenizer.bos_token_id
        if bos is None:
            raise KnownError("Nothing to complete: type a source text or a prompt")
        ids = [bos]
    return ids


def _encode_chat(tm: TextModel, messages: tuple[dict[str, str], ...]) -> list[int]:
    text = render_chat(tm, messages, add_generation_prompt=True)
    return list(tm.tokenizer(text, add_special_tokens=False)["input_ids"])


def render_chat(tm: TextModel, messages: tuple[dict[str, str], ...] | list[dict[str, str]],
                add_generation_prompt: bool) -> str:
    """The model's chat template applied to ``messages``. A template that refuses them (many raise on a system
    message, or on roles that do not alternate) is the request's problem, said in the template's own words."""
    from jinja2 import TemplateError

    try:
        return tm.tokenizer.apply_chat_template(list(messages), tokenize=False,
                                                add_generation_prompt=add_generation_prompt)
    except TemplateError as exc:
        raise ParameterError(f"The model's chat template refused these messages: {exc}") from exc


StepFn = Callable[[int], "torch.Tensor"]  # feed one token, get the next-token logits (fp32 [vocab], CPU)


def _checkpoints(tm: TextModel, req: GenerationRequest, chat: bool, prompt_ids: list[int]) -> tuple[int, ...]:
    """Where the next request is likely to share this one's tokens: the end of the source text (or of the earlier
    chat turns). The fast path computes the prompt in chunks cut there, so a new prompt after the same source reuses
    them and still gets exactly the logits of a fresh run. A function of the request alone, whatever ran before."""
    if tm.fast is None:
        return ()
    if chat:
        if len(req.messages or ()) < 2:
            return ()
        try:
            text = render_chat(tm, req.messages[:-1], add_generation_prompt=False)
        except ParameterError:  # the earlier turns alone may not be a conversation the template takes
            return ()
        shared = list(tm.tokenizer(text, add_special_tokens=False)["input_ids"])
    elif req.source and req.prompt:
        shared = list(tm.tokenizer(req.source, add_special_tokens=True)["input_ids"])
    else:
        return ()
    common = 0
    for a, b in zip(shared, prompt_ids, strict=False):  # a token may merge across the boundary: stop before it
        if a != b:
            break
        common += 1
    return (common,)


def _steppers(tm: TextModel, prompt_ids: list[int], n: int,
              checkpoints: tuple[int, ...] = ()) -> Iterator[tuple[StepFn, torch.Tensor]]:
    """Prefill the prompt once, then yield a fresh (step function, first logits) per completion."""
    if tm.fast is not None:
        # The fast path's static cache rewinds to the prompt: positions before it are never overwritten.
        logits = tm.fast.prefill(0, prompt_ids, checkpoints=checkpoints).cpu()
        while True:
            tm.fast.rewind(len(prompt_ids), 0)
            yield (lambda token: tm.fast.step([token], [0])[0].cpu()), logits
    import torch
    from transformers import DynamicCache

    cache = DynamicCache(config=tm.model.config)
    name = cache_kwarg(tm.model)
    # The cache fills in place; only the last position's logits are computed (a full-vocabulary projection
    # of every prompt position is wasted work).
    out = tm.model(input_ids=torch.tensor([prompt_ids], device=tm.device), use_cache=True, logits_to_keep=1,
                   **{name: cache})
    logits = out.logits[0, -1].float().cpu()
    for i in range(n):
        # Each completion extends its own copy of the prompt's cache; the last one may take the original.
        run_cache = copy.deepcopy(cache) if i < n - 1 else cache

        def step(token: int, run_cache: Any = run_cache) -> torch.Tensor:
            out = tm.model(input_ids=torch.tensor([[token]], device=tm.device), use_cache=True,
                           **{name: run_cache})
            return out.logits[0, -1].float().cpu()

        yield step, logits


def _decode(tm: TextModel, req: GenerationRequest, index: int, seed: int, prompt_ids: list[int], step_fn: StepFn,
            logits: torch.Tensor, budget: int, on_event: EventFn, cancel: Cancel,
            started: float) -> Completion:
    import torch

    generator = torch.Generator().manual_seed(seed)
    detok = _Detokenizer(tm.tokenizer, prompt_ids[-ANCHOR_TOKENS:])
    seen = torch.tensor(prompt_ids, dtype=torch.long)
    generated: list[int] = []
    ngrams = NgramBan(req.no_repeat_ngram)
    assembler = StopAssembler(req.stop)
    emitted: list[TokenEvent] = []
    first_at = last_at = 0.0
    finish = FinishReason.LENGTH
    counts = torch.zeros(logits.numel()) if req.presence_penalty or req.frequency_penalty else None
    mask = _token_mask(tm, req, logits.numel())

    def emit(batch: list) -> None:
        for tok, text in batch:
            # A token cut by a stop sequence keeps only the bytes of the text it kept.
            raw = token_bytes(tm.tokenizer, tok.token_id) if tok.end - tok.start == len(text) else None
            event = TokenEvent(index, len(emitted), text, tok.token_id, tok.logprob, tok.top, raw)
            emitted.append(event)
            on_event(event)

    for step in range(min(req.max_new_tokens, budget)):
        if cancel.is_set():
            finish = FinishReason.CANCELLED
            break
        if mask is not None and mask.done:  # the constrained output is complete
            finish = FinishReason.STOP
            break
        if step > 0:
            logits = step_fn(generated[-1])
        allowed = mask.allowed() if mask is not None else None
        token = pick_token(logits, req, seen, generator, ngrams.banned(generated), counts, allowed)
        last_at = time.perf_counter()
        if step == 0:
            first_at = last_at
        if token in tm.eos_ids:
            finish = FinishReason.STOP
            break
        if mask is not None:
            mask.advance(token)
        logprobs = torch.log_softmax(logits, dim=0)
        top = _alternatives(tm, logprobs, req.top_logprobs)
        generated.append(token)
        ngrams.update(generated)
        if counts is not None:
            counts[token] += 1
        if req.repetition_penalty != 1.0:
            seen = torch.cat([seen, torch.tensor([token])])
        new_text = detok.push(token)
        emit(assembler.push(new_text, token, float(logprobs[token]), top))
        if assembler.stopped:
            finish = FinishReason.STOP
            break
    if not assembler.stopped:
        emit(assembler.flush())
    decode_tokens = len(generated) - 1
    timings = Timings(
        load_s=tm.load_s,
        ttft_s=(first_at - started) if first_at else 0.0,
        tokens_per_s=decode_tokens / (last_at - first_at) if decode_tokens > 0 and last_at > first_at else 0.0)
    return Completion(text=assembler.text, finish_reason=finish, tokens=tuple(emitted), timings=timings,
                      generated=len(generated))


def _token_mask(tm: TextModel, req: GenerationRequest, vocab: int) -> Any:
    """The constraint's per-step mask (``engine/constrain.py``), or None when the output is free."""
    if req.constraint is None:
        return None
    from playground.engine.constrain import TokenMask

    return TokenMask(req.constraint, tm.tokenizer, tm.eos_ids, vocab)


@functools.cache
def _forward_params(forward: Any) -> frozenset[str]:
    return frozenset(inspect.signature(forward).parameters)


def cache_kwarg(model: Any) -> str:
    """transformers renamed ``past_key_values`` to ``cache`` during 5.x; use whichever this version takes."""
    return "cache" if "cache" in _forward_params(type(model).forward) else "past_key_values"


class _Detokenizer:
    """Text of each new token, decoding only a few tokens of context per step (decoding the whole completion
    every token costs more as it grows). The context keeps word-initial spaces right; a token that ends inside a
    multi-byte character yields "" until the next one completes it."""

    def __init__(self, tokenizer: Any, context: list[int]) -> None:
        self._tok = tokenizer
        self._context = list(context)
        self._context_text = tokenizer.decode(self._context)
        self._pending: list[int] = []

    def push(self, token: int) -> str:
        self._pending.append(token)
        full = self._tok.decode(self._context + self._pending)
        if full.endswith("\ufffd"):
            return ""
        piece = full[len(self._context_text):]
        self._context = (self._context + self._pending)[-ANCHOR_TOKENS:]
        self._context_text = self._tok.decode(self._context)
        self._pending = []
        return piece


def _alternatives(tm: TextModel, logprobs: torch.Tensor, k: int) -> tuple[Alternative, ...]:
    if k <= 0:
        return ()
    values, ids = top_k(logprobs, k)
    return tuple(Alternative(_piece(tm.tokenizer, i), i, v) for v, i in zip(values.tolist(), ids.tolist(), strict=True))


_PIECES: weakref.WeakKeyDictionary[Any, dict[int, str]] = weakref.WeakKeyDictionary()


def _piece(tokenizer: Any, token: int) -> str:
    """One token's text, memoised per tokenizer (the same tokens come up as alternatives again and again)."""
    pieces = _PIECES.get(tokenizer)
    if pieces is None:
        pieces = _PIECES[tokenizer] = {}
    text = pieces.get(token)
    if text is None:
        text = pieces[token] = tokenizer.decode([token])
    return text
