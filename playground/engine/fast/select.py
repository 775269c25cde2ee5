"""Which path a model runs on, and at which precision: the fused runner, the generic one, or transformers.

- ``fused``: ``runner.DecoderRunner`` for the families of ``arch.py`` (Llama, Mistral, Qwen2/3, Gemma 2/3, Phi-3,
  SmolLM) on the CPU: built straight from the weight files, decode in one C++ call per token;
- ``generic``: any other transformers decoder on the CPU at a quantized precision (``generic.GenericRunner``);
- ``transformers``: its own forward (GPUs, other precisions, small models under ``auto``): the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playground.engine.fast.arch import Unsupported, arch_from_config
from playground.engine.fast.quant import weight_format
from playground.errors import KnownError

PATHS = ("auto", "fused", "generic", "transformers")
# Below this size a model is bound by Python overhead, not by reading weights: quantizing it gains nothing.
AUTO_QUANTIZE_MIN_PARAMS = 50_000_000
# int4 weights with fp32 activations (int16 per group inside the AVX512-VNNI kernels): perplexity equal to fp32's on
# the embedded model over the varied text, where int8 activations (int4-a8) cost ~+1% (bench/decode_speed.py).
AUTO_PRECISION = "int4"


@dataclass(frozen=True)
class Plan:
    path: str  # fused | generic | transformers
    precision: str  # fp32 | bf16 | int8 | int4 | int4-a8 (transformers: its dtype)
    reason: str = ""  # why not a faster path, when there is one


def plan(config: Any, device_type: str, plain: str, requested: str, n_params: int, path: str = "auto") -> Plan:
    """The path for a model with ``config`` on ``device_type``; ``plain`` is the transformers dtype name (fp32 /
    bf16 / fp16), ``requested`` the precision preference, ``n_params`` its size, ``path`` a forced path."""
    if path not in PATHS:
        raise KnownError(f"Unknown engine path {path!r}; use one of {', '.join(PATHS)}")
    try:
        arch = arch_from_config(config)
        why_not_fused = ""
    except Unsupported as exc:
        arch, why_not_fused = None, str(exc)
    if path == "transformers":
        return Plan("transformers", plain, "asked for")
    if device_type != "cpu":
        if requested in ("int8", "int4", "int4-a8"):
            raise KnownError(f"{requested} runs on the CPU only; on {device_type} use bf16 or fp32 (--device cpu "
                             f"for {requested})")
        return Plan("transformers", plain, f"the fast paths run on the CPU, not {device_type}")
    shapes_ok = _int4_shapes_ok(config)
    wanted = requested
    if wanted == "auto":
        if n_params < AUTO_QUANTIZE_MIN_PARAMS and path == "auto":
            return Plan("transformers", plain, "small model: transformers' forward is as fast")
        if not shapes_ok:
            return Plan("transformers", plain, "layer sizes are not multiples of 32 (int4 needs them)")
        wanted = AUTO_PRECISION
    if weight_format(wanted) in ("int4", "int8") and not shapes_ok:
        raise KnownError(f"{wanted} needs every layer's input size to be a multiple of 32; use fp32")
    if arch is not None and path in ("auto", "fused"):
        return Plan("fused", wanted)
    if path == "fused":
        raise KnownError(f"The fused path cannot run this model: {why_not_fused}")
    if weight_format(wanted) in ("int4", "int8"):
        return Plan("generic", wanted, why_not_fused)
    if path == "generic":
        raise KnownError(f"The generic path quantizes; precision {wanted} does not")
    return Plan("transformers", wanted if wanted in ("fp32", "bf16") else plain, why_not_fused)


def _int4_shapes_ok(config: Any) -> bool:
    hidden = getattr(config, "hidden_size", 0) or 0
    inter = getattr(config, "intermediate_size", 0) or 0
    return hidden % 32 == 0 and inter % 32 == 0 and hidden > 0
