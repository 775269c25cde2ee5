"""Load a model for inspection: transformers with eager attention (the only implementation that returns the
attention weights), from the same folder the engine loads; and find its blocks, final norm and output head."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playground.domain.jobs import ProgressEvent
from playground.engine.device import choose_device, choose_dtype, loading_errors
from playground.engine.text import TextModel, check_folder, load_tokenizer
from playground.errors import UnsupportedModel

# Where transformers keeps a causal LM's blocks and final norm, by family (llama/qwen/mistral/gemma/phi: model.*,
# gpt2: transformer.*, gpt-neox: gpt_neox.*).
_BLOCKS = ("layers", "h", "blocks")
_NORMS = ("norm", "ln_f", "final_layer_norm", "final_layernorm")


@dataclass(frozen=True)
class DecoderParts:
    blocks: list[Any]  # the transformer blocks, first to last
    final_norm: Any  # applied to the last block's output before the head
    head: Any  # hidden state -> vocabulary logits
    softcap: float | None  # Gemma 2's final logit soft-capping, applied after the head


def decoder_parts(model: Any) -> DecoderParts:
    """The pieces the logit lens needs; UnsupportedModel when this architecture keeps them elsewhere."""
    base = model.base_model
    blocks = next((getattr(base, n) for n in _BLOCKS if hasattr(base, n)), None)
    norm = next((getattr(base, n) for n in _NORMS if hasattr(base, n)), None)
    head = model.get_output_embeddings()
    if blocks is None or norm is None or head is None:
        raise UnsupportedModel(f"{type(model).__name__}: cannot find its blocks, final norm and output head, which "
                               "the inspector reads")
    return DecoderParts(list(blocks), norm, head, getattr(model.config, "final_logit_softcapping", None))


def load_inspect_model(model_id: str, folder: Path, device: str | None = None, dtype: str | None = None,
                       allow_pickle: bool = False) -> TextModel:
    """``folder``'s model with eager attention and no fast path (fp32 on the CPU), as a TextModel."""
    check_folder(folder, allow_pickle)
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    dev = choose_device(device)
    dt = choose_dtype(dev, dtype)
    started = time.perf_counter()
    with loading_errors(model_id, dev, " for inspection"):
        tokenizer = load_tokenizer(folder)
        model = AutoModelForCausalLM.from_pretrained(
            str(folder), dtype=dt, attn_implementation="eager", trust_remote_code=False,
            use_safetensors=None if allow_pickle else True)
        model.to(dev)
        model.eval()
    decoder_parts(model)  # fail now, not at the first lens
    return TextModel(id=model_id, hf_model=model, tokenizer=tokenizer, device=dev, dtype=dt,
                     load_s=time.perf_counter() - started, context_length=_context_length(model.config),
                     eos_ids=_eos_ids(model, tokenizer), fast=None, precision="eager", requested_precision="eager")


def load_inspect_gguf(model_id: str, path: Path, device: str | None = None, dtype: str | None = None,
                      on_progress: Callable[[ProgressEvent], None] = lambda e: None) -> TextModel:
    """A GGUF file's model with eager attention, read by our GGUF loader and dequantized (seconds; transformers'
    own GGUF conversion took 41 s for a Qwen2.5-0.5B and left a converted copy on disk). DirectGgufUnsupported when the
    loader cannot read it (the caller falls back to that conversion)."""
    from playground.engine import memory_check
    from playground.engine.gguf_text import read_gguf

    dev = choose_device(device)
    dt = choose_dtype(dev, dtype)
    started = time.perf_counter()
    loaded = read_gguf(path, on_progress)
    memory_check.require(4 * sum(loaded.tensors.numel(n) for n in loaded.tensors), f"{model_id} for inspection")
    with loading_errors(model_id, dev, " for inspection"):
        model = loaded.to_transformers(attn_implementation="eager").to(dev, dt)
    decoder_parts(model)
    tokenizer = loaded.tokenizer
    eos = loaded.eos_ids or _eos_ids(model, tokenizer)
    return TextModel(id=model_id, hf_model=model, tokenizer=tokenizer, device=dev, dtype=dt,
                     load_s=time.perf_counter() - started, context_length=_context_length(model.config),
                     eos_ids=frozenset(eos), fast=None, precision="eager", requested_precision="eager")


def _context_length(config: Any) -> int:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048  # undeclared: inspection is bounded by its memory budget long before this


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """Where a greedy continuation stops: the generation config's end-of-sequence ids and the tokenizer's."""
    ids: set[int] = set()
    for value in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return frozenset(ids)
