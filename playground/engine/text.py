"""Load a causal language model folder (safetensors) onto the best path for it, never with remote code.

The path (``playground.engine.fast.select``): the fused runner for the common decoder families on the CPU (built
straight from the weight files: no transformers model, no full-precision copy once quantized), the generic
quantized path for other decoders, or transformers' own forward (GPUs, small models, the reference).
``TextModel.path`` and ``describe()`` say which one runs, at which precision.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground.domain.jobs import ProgressEvent
from playground.engine import memory_check
from playground.engine.device import choose_device, choose_dtype, free_memory, gist, loading_errors
from playground.engine.fast.select import AUTO_PRECISION  # noqa: F401 - re-exported (cli setup)
from playground.engine.gc_pause import collector_paused
from playground.errors import DamagedModel, KnownError, ModelNotFound, UnsupportedModel

if TYPE_CHECKING:
    import torch

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


@dataclass
class TextModel:
    """A loaded model and everything the generation loop needs about it."""

    id: str
    hf_model: Any  # transformers PreTrainedModel; None on the fused path until something asks for ``model``
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    load_s: float
    context_length: int
    eos_ids: frozenset[int]
    fast: Any = None  # a DecoderRunner / GenericRunner running prefill and decode, or None (transformers)
    precision: str = "fp32"  # what the weights run at: fp32 | bf16 | int8 | int4 | int4-a8
    requested_precision: str = "auto"  # what the loader was asked for (a change of preference reloads)
    path_reason: str = ""  # why not a faster path, when there is one
    vocab_size: int = 0
    model_loader: Callable[[], Any] | None = field(default=None, repr=False)  # loads ``hf_model`` on demand
    weights_source: str = ""  # where the weights came from when it matters ("GGUF Q4_K/Q6_K repacked", ...)
    # what the status bar shows for ``precision`` where the weights kept their file's formats (a GGUF's layers, e.g.
    # "int5/int6" for Q5_K_M, whose precision reads int8: what a float tensor among them would be quantized to)
    precision_label: str = ""

    @property
    def precision_shown(self) -> str:
        """The precision as the status bar names it: a GGUF's held formats where they differ (``precision_label``)."""
        return self.precision_label or self.precision

    @property
    def model(self) -> Any:
        """transformers' module for this model (LoRA training, the reference forward): on the fused path it is
        loaded on first use (seconds, and full-precision memory), never for generation itself."""
        if self.hf_model is None and self.model_loader is not None:
            self.hf_model = self.model_loader()
        return self.hf_model

    @model.setter
    def model(self, value: Any) -> None:
        self.hf_model = value
        if value is None:
            self.model_loader = None

    @property
    def path(self) -> str:
        """fused (the one-call C++ decode step) | python (the fast runner's torch step: fp32/bf16, or no compiled
        kernels) | generic | transformers."""
        if self.fast is None:
            return "transformers"
        return self.fast.path

    def describe(self) -> str:
        """One line for the status bar and --self-test: precision (a GGUF's held formats, e.g. int5/int6), path
        and the kernels' code path."""
        text = f"{self.precision_shown} · {self.path}"
        if self.fast is not None and self.precision not in ("fp32", "bf16"):
            from playground.engine.fast import kernels
            from playground.engine.fast.int4_kernel import prefill_gemm

            info = kernels.build_info()
            text += f" · kernels {info['isa']}" if info.get("loaded") else f" · no kernels ({info.get('reason')})"
            text += f" · x {_activations(self.precision)} · prefill {prefill_gemm()}"
        return text + (f" · {self.weights_source}" if self.weights_source else "")

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def unload(self) -> None:
        device = self.device
        self.model = None
        self.fast = None
        free_memory(device)


def _activations(precision: str) -> str:
    """What decode multiplies the quantized weights by: x as is (fp32), rounded to int16 per group (AVX512-VNNI
    kernels) or to int8 (the -a8 precisions, whose down projection keeps the fp32 mode)."""
    from playground.engine.fast.int4_kernel import fp32_x_bits

    fp32_mode = "int16" if fp32_x_bits() == 16 else "fp32"
    return f"int8 (down projection {fp32_mode})" if precision.endswith("-a8") else fp32_mode


# What transformers builds a tokenizer from (fast, SentencePiece, byte-level BPE, WordPiece); a folder with none of
# them gets an empty one from AutoTokenizer, without an error.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model",
                   "sentencepiece.bpe.model", "vocab.model")


# Checkpoints quantized for GPU kernels (config.json's quantization_config.quant_method): transformers would ask for
# packages such as optimum or bitsandbytes, and even with them most run on CUDA only.
PREQUANTIZED = {"gptq": "GPTQ", "awq": "AWQ", "bitsandbytes": "bitsandbytes", "fp8": "FP8", "fbgemm_fp8": "FP8",
                "compressed-tensors": "compressed-tensors", "aqlm": "AQLM", "eetq": "EETQ", "hqq": "HQQ",
                "quanto": "Quanto", "exl2": "EXL2", "vptq": "VPTQ", "higgs": "HIGGS"}


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
    if not isinstance(config, dict):
        raise UnsupportedModel(f"{config_path} is not a model configuration (a JSON object)")
    quantized = config.get("quantization_config")
    method = str(quantized.get("quant_method", "")).lower() if isinstance(quantized, dict) else ""
    if method in PREQUANTIZED:
        raise UnsupportedModel(f"{folder.name} holds {PREQUANTIZED[method]}-quantized weights, which need GPU "
                               f"libraries Playground does not use: load the model's original weights (they are "
                               f"quantized for the CPU on first load) or a GGUF of it")
    has_safetensors = any(folder.glob("*.safetensors"))
    has_pickle = any(p.suffix in PICKLE_SUFFIXES for p in folder.iterdir())
    if not has_safetensors and has_pickle and not allow_pickle:
        raise UnsupportedModel(
            f"{folder.name} holds only pickle weights (.bin/.pt), which can run code when loaded; "
            "convert them to safetensors, or allow pickle weights explicitly if you trust the source")
    if not has_safetensors and not has_pickle:
        raise UnsupportedModel(f"{folder} has no weight files (*.safetensors)")
    _check_shards(folder)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES) and not any(folder.glob("*.tiktoken")):
        # transformers would make an empty tokenizer of it, and every prompt would read as nothing
        raise UnsupportedModel(f"{folder.name} has no tokenizer files (tokenizer.json, tokenizer.model, or vocab.json "
                               f"with merges.txt): copy them from where its weights came from")
    return config


def _check_shards(folder: Path) -> None:
    """Every weight file a ``*.index.json`` lists is there (a download that stopped leaves some out)."""
    for index in folder.glob("*.safetensors.index.json"):
        try:
            files = set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values())
        except (OSError, ValueError, AttributeError):
            continue  # an index that cannot be read: the loaders say what they make of it
        missing = sorted(name for name in files if isinstance(name, str) and not (folder / name).is_file())
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise DamagedModel(f"{folder.name} lacks {missing[0]}{more}, which its {index.name} lists: a download "
                               f"that stopped? Fetch it again")


def load_text_model(model_id: str, folder: Path, device: str | None = None, dtype: str | None = None,
                    allow_pickle: bool = False, precision: str | None = None,
                    on_progress: Callable[[ProgressEvent], None] = lambda e: None,
                    adapter: Path | None = None, path: str = "auto") -> TextModel:
    """Load tokenizer and weights from ``folder`` onto the best path (``path`` forces one: fused | generic |
    transformers); return a ready TextModel.

    ``precision`` (auto | fp32 | bf16 | int8 | int4 | int4-a8; default: $PLAYGROUND_PRECISION, else auto) picks
    what the weights run at on the CPU; see ``playground.engine.fast``. ``adapter``: a LoRA adapter folder, merged
    into the weights before any path is built (``playground.engine.lora``)."""
    raw_config = check_folder(folder, allow_pickle)
    import torch
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    from playground.engine import light_config
    from playground.engine.fast import select
    from playground.engine.fast.safetensors_read import SafetensorsTensors

    hf_logging.disable_progress_bar()
    light_config.prepare()

    dev = choose_device(device)
    dt = choose_dtype(dev, dtype)
    if dev.type == "cpu":  # a first run builds the CPU kernels here, its progress shown
        from playground.engine.fast import kernels

        kernels.prepare(on_progress)
    started = time.perf_counter()
    try:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
    except (ValueError, KeyError) as exc:
        if "auto_map" in raw_config:  # transformers' own text asks for trust_remote_code, which is never passed
            raise UnsupportedModel(f"{folder.name}: its model type {raw_config.get('model_type')!r} needs the model's "
                                   f"own Python code, which Playground never runs (trust_remote_code): use a GGUF "
                                   f"of it, or a model transformers supports") from exc
        raise UnsupportedModel(f"{folder.name}: unsupported model type ({gist(exc)})") from exc
    requested = resolve_precision(precision)
    plain = str(dt).removeprefix("torch.").replace("float32", "fp32").replace("bfloat16", "bf16")
    try:
        tensors = SafetensorsTensors(folder)
    except KnownError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged header (struct, JSON, OS errors): cannot load this
        raise UnsupportedModel(f"Could not load {model_id}: unreadable weights ({exc})") from exc
    chosen = select.plan(config, dev.type, plain, requested, tensors.numel(), path)
    if dev.type == "cpu" or chosen.path == "fused":  # a GPU's memory is torch's to report (OutOfMemory)
        held = chosen.precision if chosen.path == "fused" else plain if chosen.path == "transformers" else "fp32"
        memory_check.require(int(tensors.numel() * memory_check.BYTES_PER_WEIGHT.get(held, 4.0)), model_id)
    with loading_errors(model_id, dev):
        with collector_paused():
            tokenizer = load_tokenizer(folder)
        model = fast = None
        loader = None
        if adapter is not None or chosen.path != "fused":
            model_dt = torch.float32 if chosen.path != "transformers" else dt
            model = _transformers_model(folder, config, dev, model_dt, allow_pickle)
            if adapter is not None:  # fine-tuned variant (BASE+name): merged now, so every path runs it
                from playground.engine.lora import merge_adapter

                on_progress(ProgressEvent(f"Applying the adapter of {model_id}", None))
                model = merge_adapter(model, adapter, model_id)
        if chosen.path == "fused":
            if model is not None:  # merged weights: built from them (not stored: they are this variant's)
                fast = _fused(model_id, None, config, dict(model.state_dict()), chosen.precision, on_progress)
                model = None
            else:
                fast = _fused(model_id, folder, config, tensors, chosen.precision, on_progress)
            # Features that need transformers' own module (LoRA training, its forward as a reference) load
            # it on first use: the fused path itself never holds a full-precision copy.
            loader = _lazy_transformers(folder, config, dev, allow_pickle, adapter, model_id)
        elif chosen.path == "generic":
            from playground.engine.fast.generic import GenericRunner

            on_progress(ProgressEvent(f"Quantizing to {chosen.precision}", None))
            fast = GenericRunner(model, chosen.precision)
    context = _context_length(config, tokenizer)
    if fast is not None:
        context = min(context, fast.max_positions)
    return TextModel(
        id=model_id, hf_model=model, tokenizer=tokenizer, device=dev,
        dtype=torch.float32 if fast is not None else dt, load_s=time.perf_counter() - started,
        context_length=context, eos_ids=_eos_ids(folder, model, tokenizer), fast=fast,
        precision=chosen.precision, requested_precision=requested, path_reason=chosen.reason,
        vocab_size=int(getattr(config, "vocab_size", 0) or len(tokenizer)), model_loader=loader)


def _fused(model_id: str, folder: Path | None, config: Any, tensors: Any, precision: str,
           on_progress: Callable[[ProgressEvent], None]) -> Any:
    from playground.engine.fast.runner import DecoderRunner
    from playground.engine.fast.store import store_path

    store = store_path(folder, precision) if precision != "fp32" and folder is not None else None
    return DecoderRunner.from_tensors(config, tensors, precision, store, on_progress)


def _lazy_transformers(folder: Path, config: Any, dev: torch.device, allow_pickle: bool, adapter: Path | None,
                       model_id: str) -> Callable[[], Any]:
    def load() -> Any:
        import torch

        from playground.engine.fast.safetensors_read import SafetensorsTensors

        if dev.type == "cpu":
            memory_check.require(4 * SafetensorsTensors(folder).numel(), f"{model_id} at fp32 (for this feature)")
        model = _transformers_model(folder, config, dev, torch.float32, allow_pickle)
        if adapter is not None:
            from playground.engine.lora import merge_adapter

            model = merge_adapter(model, adapter, model_id)
        return model

    return load


def _transformers_model(folder: Path, config: Any, dev: torch.device, dt: torch.dtype, allow_pickle: bool) -> Any:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(folder), config=config, dtype=dt, trust_remote_code=False,
        use_safetensors=None if allow_pickle else True)
    model.to(dev)
    model.eval()
    return model


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


def load_tokenizer(folder: Path) -> Any:
    """The folder's tokenizer; a file it cannot read (cut short, not JSON) is named as the tokenizer's."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    except (ValueError, OSError) as exc:  # (json's errors are ValueErrors)
        raise DamagedModel(f"{folder.name}: its tokenizer files cannot be read ({gist(exc)}); a download cut "
                           f"short? Fetch them again") from exc


def _context_length(config: Any, tokenizer: Any) -> int:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", 0)
    if isinstance(limit, int) and 0 < limit < 10_000_000:
        return limit
    raise KnownError("The model does not declare its context length")


def _eos_ids(folder: Path, model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    gen = getattr(model, "generation_config", None)
    if gen is None and (folder / "generation_config.json").is_file():
        try:
            gen_eos = json.loads((folder / "generation_config.json").read_text(encoding="utf-8")).get("eos_token_id")
        except (OSError, ValueError, AttributeError):
            gen_eos = None
    else:
        gen_eos = getattr(gen, "eos_token_id", None)
    for value in (gen_eos, tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return frozenset(ids)
