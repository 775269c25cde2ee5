"""Load a GGUF file as a TextModel straight from its memory map (``fast.gguf_model``): no fp32 state dict, no
conversion folder, seconds instead of transformers' ~35-75 s ``gguf_file`` path.

Quantized weights keep the format they were stored in (Q4_0 / Q4_1 / Q4_K as int4, Q6_K as int6 where its kernel
runs, Q5_* / Q8_0 as int8, see ``fast.gguf_repack``) and run on the fused runner; the precision setting picks the
activations (``int4-a8``: int8 activations) or, for fp32 / bf16, transformers' forward on the dequantized weights
(the reference). Float GGUFs (F32 / F16 / BF16 weights) take the same path choice as a safetensors folder. A file
the loader cannot read (another architecture, tensor type or tokenizer) raises ``DirectGgufUnsupported``: the caller
falls back to transformers' conversion and says so. A damaged file (``DamagedModel``: truncated, not GGUF, a split
model missing parts) is refused as it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playground.domain.jobs import ProgressEvent
from playground.engine import light_config, memory_check
from playground.engine.device import choose_device, choose_dtype, loading_errors
from playground.errors import DamagedModel, KnownError, UnsupportedModel

ProgressFn = Callable[[ProgressEvent], None]
_INT4_TYPES = ("Q4_0", "Q4_1", "Q4_K")
_FLOAT_TYPES = ("F32", "F16", "BF16")


class DirectGgufUnsupported(UnsupportedModel):
    """The GGUF loader cannot read this file (the message says what); transformers' conversion may."""


def read_gguf(path: Path, on_progress: ProgressFn = lambda e: None) -> Any:
    """``fast.gguf_model.load_gguf`` (lazy), its "cannot read" as DirectGgufUnsupported; a damaged file's
    DamagedModel passes through as it is: no reader can take it, so conversion is not tried."""
    from playground.engine.fast.gguf_model import load_gguf

    try:
        return load_gguf(path, on_progress, lazy=True)
    except DamagedModel:
        raise
    except UnsupportedModel as exc:
        raise DirectGgufUnsupported(str(exc)) from exc


def load_gguf_text_model(model_id: str, path: Path, device: str | None = None, dtype: str | None = None,
                         precision: str | None = None, on_progress: ProgressFn = lambda e: None,
                         path_choice: str = "auto") -> Any:
    """A TextModel for the GGUF file ``path`` (see the module docstring)."""
    import torch
    from transformers import AutoConfig

    from playground.engine.fast import kernels, select
    from playground.engine.fast.arch import Unsupported
    from playground.engine.text import TextModel, resolve_precision

    light_config.prepare()
    kernels.prepare(on_progress)  # the header's vocabulary is read by the library: a first run builds it here
    started = time.perf_counter()
    loaded = read_gguf(path, on_progress)
    cfg = dict(loaded.config)
    config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    dev = choose_device(device)
    dt = choose_dtype(dev, dtype)
    requested = resolve_precision(precision)
    plain = str(dt).removeprefix("torch.").replace("float32", "fp32").replace("bfloat16", "bf16")
    linear_types = {t for name, t in loaded.source_types.items() if name.endswith("_proj.weight")}
    quantized = bool(linear_types - set(_FLOAT_TYPES))
    source = f"GGUF {'/'.join(sorted(linear_types))}" + (" repacked" if quantized else "")
    if quantized:
        chosen = _quantized_plan(config, dev.type, plain, requested, linear_types, path_choice)
    else:
        n_params = sum(loaded.tensors.numel(n) for n in loaded.tensors)  # from the header: nothing repacked
        chosen = select.plan(config, dev.type, plain, requested, n_params, path_choice)
    tensors = loaded.tensors
    # the fused runner holds the weights repacked; transformers' forward, dequantized to fp32
    need = sum(tensors.repacked_nbytes(n) if chosen.path == "fused" else 4 * tensors.numel(n) for n in tensors)
    memory_check.require(need, path.name)
    fast = model = None
    with loading_errors(model_id, dev):
        if chosen.path == "fused":
            from playground.engine.fast.runner import DecoderRunner

            try:
                fast = DecoderRunner.from_tensors(config, loaded.tensors, chosen.precision, None, on_progress)
            except Unsupported as exc:
                if path_choice == "fused":
                    raise KnownError(f"The fused path cannot run this model: {exc}") from exc
                chosen = select.Plan("transformers", "fp32", str(exc))
        if fast is None:
            on_progress(ProgressEvent(f"De-quantizing {path.name} for transformers' forward", None))
            model = loaded.to_transformers().to(dev, dtype=dt if chosen.path == "transformers" else torch.float32)
            if chosen.path == "generic":
                from playground.engine.fast.generic import GenericRunner

                fast = GenericRunner(model, chosen.precision)
    label = ""
    if quantized and chosen.path == "fused" and fast is not None:  # the formats they became (Q5_K: int5 or int8)
        held = "/".join(sorted({p.format for layer in fast.weights.layers for g in layer.groups() for p in g.parts}))
        source += f" to {held}"
        if any(getattr(p.weight, "in_blocks", False) for layer in fast.weights.layers for g in layer.groups()
               for p in g.parts):  # int5_kernel.reads_q5k_blocks
            source += ", Q5_K read in place"
        label = held + ("-a8" if chosen.precision.endswith("-a8") else "")
    tokenizer = loaded.tokenizer
    context = int(loaded.config.get("max_position_embeddings") or 2048)
    if fast is not None:
        context = min(context, fast.max_positions)
    eos = set(loaded.eos_ids)
    if isinstance(tokenizer.eos_token_id, int):
        eos.add(tokenizer.eos_token_id)
    on_progress(ProgressEvent(f"Loaded {path.name}", 1.0))
    return TextModel(
        id=model_id, hf_model=model if chosen.path != "fused" else None, tokenizer=tokenizer, device=dev,
        dtype=torch.float32 if fast is not None else dt, load_s=time.perf_counter() - started,
        context_length=context, eos_ids=frozenset(eos), fast=fast, precision=chosen.precision,
        requested_precision=requested, path_reason=chosen.reason, vocab_size=int(config.vocab_size),
        model_loader=_lazy_transformers(path) if chosen.path == "fused" else None, weights_source=source,
        precision_label=label)


def _quantized_plan(config: Any, device_type: str, plain: str, requested: str, linear_types: set[str],
                    path_choice: str) -> Any:
    """Quantized GGUF weights run as stored: the fused runner (or transformers' forward on the dequantized
    weights when fp32 / bf16 or another device is asked for, or the family is not one the runner covers)."""
    from playground.engine.fast import select
    from playground.engine.fast.arch import Unsupported, arch_from_config

    if path_choice == "transformers" or requested in ("fp32", "bf16") or device_type != "cpu":
        why = "asked for" if path_choice == "transformers" else (
            f"precision {requested} asked for" if requested in ("fp32", "bf16") else
            f"the fast paths run on the CPU, not {device_type}")
        return select.Plan("transformers", plain if device_type != "cpu" else
                           (requested if requested in ("fp32", "bf16") else "fp32"), f"{why}: GGUF weights dequantized")
    fmt = "int4" if linear_types & set(_INT4_TYPES) else "int8"
    precision = fmt + ("-a8" if requested.endswith("-a8") else "")
    try:
        arch_from_config(config)
    except Unsupported as exc:
        if path_choice == "fused":
            raise KnownError(f"The fused path cannot run this model: {exc}") from exc
        return select.Plan("transformers", "fp32", f"{exc}: GGUF weights dequantized")
    return select.Plan("fused", precision, "")


def _lazy_transformers(path: Path) -> Callable[[], Any]:
    """transformers' module for features that need it (LoRA training, the reference forward), read again from
    the file when first asked for (the runner's weights are its own, fused copies)."""
    def load() -> Any:
        from playground.engine.fast.gguf_model import load_gguf

        loaded = load_gguf(path, tokenizer=False, lazy=True)
        tensors = loaded.tensors
        memory_check.require(4 * sum(tensors.numel(n) for n in tensors), f"{path.name} at fp32 (for this feature)")
        return loaded.to_transformers()

    return load
