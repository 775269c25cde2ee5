"""One inspection: continue the text greedily if asked, then one forward pass that keeps every layer's attention
weights and hidden states.

    inspect(tm, InspectRequest(prompt="Country: Italy\\nCapital:")) -> Inspection

``tm`` must run transformers' eager attention (``model.load_inspect_model``): SDPA and flash kernels never form
the weights. Attention is [layers, heads, T, T] float32, so its memory grows with T²: texts beyond what fits
``ATTENTION_BUDGET_BYTES`` are refused with a message rather than swapping the machine to a halt.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from playground.domain.inspect import Inspection, InspectRequest
from playground.domain.jobs import Cancel
from playground.engine.device import free_memory
from playground.engine.inspect.lens import lens
from playground.engine.inspect.model import decoder_parts
from playground.engine.inspect.tokens import Detokenizer, encode
from playground.errors import ContextOverflow, KnownError, OutOfMemory

if TYPE_CHECKING:
    import torch

    from playground.engine.text import TextModel

ATTENTION_BUDGET_BYTES = 1 << 30  # 1 GiB of weights: ~1000 tokens on a 30-layer, 9-head model
FIRST_LENS = 10  # positions whose layer-by-layer predictions come with the first view (the last ones)


class Cancelled(KnownError):
    """The user stopped the inspection before its forward pass."""


def max_tokens(tm: TextModel) -> int:
    """The longest text (in tokens) whose attention weights fit the budget on this model."""
    cfg = tm.model.config
    per_t2 = 4 * cfg.num_hidden_layers * cfg.num_attention_heads
    return min(tm.context_length, int((ATTENTION_BUDGET_BYTES / per_t2) ** 0.5))


def inspect(tm: TextModel, request: InspectRequest, lens_positions: Sequence[int] | None = None,
            cancel: Cancel | None = None) -> Inspection:
    """Tokens, attention and hidden states of ``request.text`` (after ``request.new_tokens`` greedy tokens), with
    the lens at ``lens_positions`` (default: the last ``FIRST_LENS`` positions)."""
    import torch

    request.validate()
    cancel = cancel or Cancel()
    started = time.perf_counter()
    toks = encode(tm.tokenizer, request.source, request.prompt, request.completion)
    limit = max_tokens(tm)
    if len(toks.ids) + request.new_tokens > limit:
        what = "context" if limit == tm.context_length else "inspector's memory budget"
        raise ContextOverflow(f"The text is {len(toks.ids)} tokens (+{request.new_tokens} new); the {what} allows "
                              f"{limit} on {tm.id}: shorten the source text or the prompt")
    ids, texts = list(toks.ids), list(toks.texts)
    try:
        with torch.inference_mode():
            generated = _continue_greedily(tm, ids, request.new_tokens, cancel)
            detok = Detokenizer(tm.tokenizer, ids)
            texts += [detok.push(t) for t in generated]
            ids += generated
            if cancel.is_set():
                raise Cancelled("Stopped before the inspection ran")
            attention, hidden = _forward(tm, ids)
            positions = lens_positions if lens_positions is not None else range(max(0, len(ids) - FIRST_LENS),
                                                                                len(ids))
            first_lens = lens(tm, hidden, positions)
    except torch.OutOfMemoryError as exc:
        free_memory(tm.device)
        raise OutOfMemory(f"Out of memory on {tm.device} while inspecting; memory was freed. Shorten the text")\
            from exc
    return Inspection(model=tm.id, tokens=tuple(texts), token_ids=tuple(ids), source_tokens=toks.source_tokens,
                      prompt_tokens=toks.prompt_tokens, generated=len(generated), attention=attention,
                      hidden=hidden, lens=first_lens, seconds=time.perf_counter() - started)


def _forward(tm: TextModel, ids: list[int]) -> tuple[Any, Any]:
    """(attention [L, H, T, T], hidden [L + 1, T, D]) as float32 numpy arrays, from one forward pass.

    Hidden states are taken by hooks on the blocks, not from ``output_hidden_states``: transformers replaces its
    last entry with the final-normed state, and the lens must treat every layer alike."""
    import torch

    parts = decoder_parts(tm.model)
    states: list[torch.Tensor] = []

    def before_first(_module: Any, args: tuple, kwargs: dict) -> None:
        states.append(args[0] if args else kwargs["hidden_states"])

    def after_block(_module: Any, _args: tuple, output: Any) -> None:
        states.append(output[0] if isinstance(output, tuple) else output)

    hooks = [parts.blocks[0].register_forward_pre_hook(before_first, with_kwargs=True)]
    hooks += [block.register_forward_hook(after_block) for block in parts.blocks]
    try:
        out = tm.model(input_ids=torch.tensor([ids], device=tm.device), output_attentions=True, use_cache=False,
                       logits_to_keep=1)
    finally:
        for hook in hooks:
            hook.remove()
    if not out.attentions or out.attentions[0] is None:
        raise KnownError(f"{tm.id} did not return attention weights (it needs eager attention)")
    attention = torch.stack([a[0] for a in out.attentions]).float().cpu().numpy()  # (L, H, T, T)
    hidden = torch.stack([s[0] for s in states]).float().cpu().numpy()  # (L + 1, T, D)
    return attention, hidden


def _continue_greedily(tm: TextModel, ids: list[int], n: int, cancel: Cancel) -> list[int]:
    """Up to ``n`` greedy tokens after ``ids`` (fewer at end-of-sequence or when cancelled)."""
    import torch
    from transformers import DynamicCache

    from playground.engine.generate import cache_kwarg

    if n <= 0:
        return []
    cache = DynamicCache(config=tm.model.config)
    name = cache_kwarg(tm.model)
    feed = ids
    out: list[int] = []
    for _ in range(n):
        if cancel.is_set():
            break
        logits = tm.model(input_ids=torch.tensor([feed], device=tm.device), use_cache=True, logits_to_keep=1,
                          **{name: cache}).logits[0, -1]
        token = int(torch.argmax(logits))
        if token in tm.eos_ids:
            break
        out.append(token)
        feed = [token]
    return out
