"""Load a causal language model folder (safetensors) with transformers, never with remote code."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground.domain.jobs import ProgressEvent
from playground.engine.device import choose_device, choose_dtype, free_memory
from playground.errors import KnownError, ModelNotFound, OutOfMemory, UnsupportedModel

if TYPE_CHECKING:
    import torch

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
# Below this size a model is bound by Python overhead, not by reading weights: quantizing it gains nothing.
AUTO_QUANTIZE_MIN_PARAMS = 50_000_000
# The fastest precision that keeps fp32's answers on the embedded model (bench/decode_speed.py: 20/20 few-shot
# answers, perplexity +0.2%): int4 weights, activations rounded to int8 per group of 32.
AUTO_PRECISION = "int4-a8"


@dataclass
class TextModel:
    """A loaded model and everything the generation loop needs about it."""

    id: str
    model: Any  # transformers PreTrainedModel
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    load_s: float
    context_length: int
    eos_ids: frozenset[int]
    fast: Any = None  # a FastLlama running prefill/decode, or None for transformers' own forward
    precision: str = "fp32"  # what decode runs at: fp32 | bf16 | int8 | int4 (+ "-kernel"/"-stock")
    requested_precision: str = "auto"  # what the loader was asked for (a change of preference reloads)

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def unload(self) -> None:
        device = self.device
        self.model = None
        self.fast = None
        free_memory(device)


def check_folder(folder: Path, allow_pickle: bool = False) -> dict[str, Any]:
    """Validate a model folder before loading it; return its config.json. Raises a KnownError that says why."""
    if not folder.is_dir():
        raise ModelNotFound(f"Model folder not found: {folder}")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise UnsupportedModel(f"{folder} has no config.json; it is not a transformers model folder")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnsupportedModel(f"{config_path} is unreadable: {exc}") from exc
    has_safetensors = any(folder.glob("*.safetensors"))
    has_pickle = any(p.suffix in PICKLE_SUFFIXES for p in folder.iterdir())
    if not has_safetensors and has_pickle and not allow_pickle:
        raise UnsupportedModel(
            f"{folder.name} holds only pickle weights (.bin/.pt), which can run code when loaded; "
            "convert them to safetensors, or allow pickle weights explicitly if you trust the source")
    if not has_safetensors and not has_pickle:
        raise UnsupportedModel(f"{folder} has no weight files (*.safetensors)")
    return config


def load_text_model(model_id: str, folder: Path, device: str | None = None, dtype: str | None = None,
                    allow_pickle: bool = False, precision: str | None = None,
                    on_progress: Callable[[ProgressEvent], None] = lambda e: None,
                    adapter: Path | None = None) -> TextModel:
    """Load tokenizer and weights from ``folder`` onto the chosen device; return a ready TextModel.

    ``precision`` (auto | fp32 | bf16 | int8 | int4; default: $PLAYGROUND_PRECISION, else auto) picks the decode
    path on the CPU; see ``playground.engine.fast``. ``adapter``: a LoRA adapter folder, merged into the weights
    before the fast path is built (``playground.engine.lora``)."""
    check_folder(folder, allow_pickle)
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    dev = choose_device(device)
    dt = choose_dtype(dev, dtype)
    started = time.perf_counter()
    try:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
    except (ValueError, KeyError) as exc:
        raise UnsupportedModel(f"{folder.name}: unsupported model type ({exc})") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(
            str(folder), config=config, dtype=dt, trust_remote_code=False,
            use_safetensors=None if allow_pickle else True)
        model.to(dev)
        model.eval()
    except torch.OutOfMemoryError as exc:
        free_memory(dev)
        raise OutOfMemory(f"Not enough memory on {dev} to load {model_id}; try a smaller model or CPU") from exc
    except Exception as exc:  # noqa: BLE001 - any failure reading third-party files is "cannot load this"
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UnsupportedModel(f"Could not load {model_id}: {first_line}") from exc
    if adapter is not None:  # fine-tuned variant (BASE+name): merged now, so every path below runs it
        from playground.engine.lora import merge_adapter

        on_progress(ProgressEvent(f"Applying the adapter of {model_id}", None))
        model = merge_adapter(model, adapter, model_id)
    requested = resolve_precision(precision)
    fast, chosen = _fast_path(model, dev, dt, requested, on_progress)
    return TextModel(
        id=model_id, model=model, tokenizer=tokenizer, device=dev, dtype=dt,
        load_s=time.perf_counter() - started,
        context_length=_context_length(config, tokenizer),
        eos_ids=_eos_ids(model, tokenizer), fast=fast, precision=chosen, requested_precision=requested)


_default_precision: str | None = None  # set by --precision / the Model menu; else $PLAYGROUND_PRECISION, else auto


def set_default_precision(precision: str | None) -> None:
    """The precision models load at when the caller does not say (validated now, so a typo fails early)."""
    global _default_precision
    _default_precision = resolve_precision(precision) if precision else None


def default_precision() -> str:
    return resolve_precision(None)


def resolve_precision(precision: str | None) -> str:
    from playground.engine.fast.quant import PRECISIONS

    value = (precision or _default_precision or os.environ.get("PLAYGROUND_PRECISION") or "auto").lower()
    if value not in PRECISIONS:
        raise KnownError(f"Unknown precision {value!r}; use one of {', '.join(PRECISIONS)}")
    return value


def _fast_path(model: Any, dev: torch.device, dt: torch.dtype, precision: str | None,
               on_progress: Callable[[ProgressEvent], None]) -> tuple[Any, str]:
    """Build the lean decode path when asked for (or, for ``auto``, when it pays off); return (fast, precision)."""
    import torch

    from playground.engine.fast.llama import FastLlama, unsupported_reason

    wanted = resolve_precision(precision)
    plain = str(dt).removeprefix("torch.").replace("float32", "fp32").replace("bfloat16", "bf16")
    reason = unsupported_reason(model)
    if wanted == "auto":
        big = sum(p.numel() for p in model.parameters()) >= AUTO_QUANTIZE_MIN_PARAMS
        if dev.type != "cpu" or dt != torch.float32 or reason or not big or not _int4_shapes_ok(model):
            return None, plain
        wanted = AUTO_PRECISION
    if dev.type != "cpu":
        if wanted in ("int8", "int4", "int4-a8"):
            raise KnownError(f"{wanted} runs on the CPU only; on {dev.type} use bf16 or fp32 (--device cpu for "
                             f"{wanted})")
        return None, plain
    if reason:
        raise KnownError(f"Precision {wanted} needs the fast path, but {reason}; use precision auto")
    if wanted.startswith("int4") and not _int4_shapes_ok(model):
        raise KnownError("int4 needs every layer's input size to be a multiple of 32; use int8")
    if dt != torch.float32:
        raise KnownError(f"Precision {wanted} quantizes from float32 weights; load with dtype auto or float32")
    from playground.engine.fast.store import store_path

    folder = Path(getattr(model, "name_or_path", "") or ".")
    store = store_path(folder, wanted) if folder.is_dir() and wanted != "fp32" else None
    fast = FastLlama(model, wanted, store, on_progress)
    return fast, fast.layers[0].qkv.precision if fast.layers else wanted


def _int4_shapes_ok(model: Any) -> bool:
    cfg = model.config
    return cfg.hidden_size % 32 == 0 and cfg.intermediate_size % 32 == 0

def _context_length(config: Any, tokenizer: Any) -> int:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", 0)
    if isinstance(limit, int) and 0 < limit < 10_000_000:
        return limit
    raise KnownError("The model does not declare its context length")


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (gen_eos, tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return frozenset(ids)
