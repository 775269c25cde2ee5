"""Pick the device and dtype: CUDA, then Apple MPS, then CPU, unless the user says otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from playground.errors import KnownError, OutOfMemory, UnsupportedModel, library_panic

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


@contextmanager
def loading_errors(model_id: str, device: torch.device, purpose: str = "") -> Iterator[None]:
    """What loading a third-party model can raise, as one message: out of memory (memory freed first), or "cannot
    load this" with the library's first line. ``purpose`` follows the id ("for inspection")."""
    import torch

    try:
        yield
    except torch.OutOfMemoryError as exc:
        free_memory(device)
        raise OutOfMemory(f"Not enough memory on {device} to load {model_id}{purpose}; "
                          "try a smaller model or CPU") from exc
    except KnownError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure reading third-party files is "cannot load this"
        raise UnsupportedModel(f"Could not load {model_id}{purpose}: {gist(exc)}") from exc
    except BaseException as exc:
        if library_panic(exc):  # the tokenizers library on a malformed tokenizer file
            raise UnsupportedModel(f"Could not load {model_id}{purpose}: its tokenizer is malformed "
                                   f"({gist(exc)})") from exc
        raise


def gist(exc: BaseException) -> str:
    """The library's first line; where it only announces a list ("Error(s) in loading state_dict for X:"), the
    list's first entry too, since that is what says which tensor and why. A bare KeyError (a name the library has
    no entry for, e.g. an unknown activation in config.json) says so."""
    if type(exc) is KeyError and len(exc.args) == 1:
        return f"transformers does not know {exc.args[0]!r} (check the model's config.json)"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    if lines[0].endswith(":") and len(lines) > 1:
        more = f" (and {len(lines) - 2} more)" if len(lines) > 2 else ""
        return f"{lines[0]} {lines[1]}{more}"
    return lines[0]
