"""Pick the device and dtype: CUDA, then Apple MPS, then CPU, unless the user says otherwise."""

from __future__ import annotations

from typing import TYPE_CHECKING

from playground.errors import KnownError

if TYPE_CHECKING:
    import torch

DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16",
          "bfloat16": "bfloat16", "bf16": "bfloat16"}


def choose_device(preference: str | None = None) -> torch.device:
    """Return ``preference`` if available, else the best device present."""
    import torch

    if preference and preference != "auto":
        dev = torch.device(preference)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise KnownError("CUDA was requested but no CUDA device is available")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise KnownError("MPS was requested but Apple Metal is not available")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def choose_dtype(device: torch.device, preference: str | None = None) -> torch.dtype:
    """fp32 on CPU (bf16 matmuls are slower there), bf16 on CUDA when supported, fp16 on MPS."""
    import torch

    if preference and preference != "auto":
        name = DTYPES.get(preference.lower())
        if name is None:
            raise KnownError(f"Unknown dtype {preference!r}; use one of float32, float16, bfloat16")
        return getattr(torch, name)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32



def free_memory(device: torch.device) -> None:
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()
