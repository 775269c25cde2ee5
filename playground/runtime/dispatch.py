"""One entry point for every text model, local or remote: load it, generate with it, fill sheet cells with it.

Local ids resolve through the registry and load with transformers; ``remote:<endpoint>/<model>`` ids become a
RemoteTextModel that talks to an OpenAI-compatible server. Callers (runner, compare pool, sheet worker, CLI) hold
whatever ``load_model`` returns and pass it back here, so they never branch on the kind themselves.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground.domain.image import ImageRequest, ImageResult, StepEvent
from playground.domain.jobs import Cancel, ProgressEvent
from playground.domain.models import is_remote
from playground.domain.score import ScoreItem, ScoreResult
from playground.domain.text import GenerationRequest, GenerationResult, TokenEvent
from playground.engine.generate import generate
from playground.errors import ModelNotFound, UnsupportedModel

if TYPE_CHECKING:
    from playground.domain.models import ModelInfo
    from playground.models.registry import Registry

ProgressFn = Callable[[ProgressEvent], None]


def is_remote_model(model: Any) -> bool:
    """True for a loaded RemoteTextModel."""
    return bool(getattr(model, "remote", False))


def add_model(path: str | os.PathLike[str], registry: Registry | None = None,
              on_progress: ProgressFn = lambda e: None) -> tuple[ModelInfo, str]:
    """Register a model folder or a .gguf file the user brings; return its entry and, for a GGUF, one line on how
    it will load. A GGUF is read first (its header): a damaged one (truncated, not GGUF, a split model missing
    parts) raises DamagedModel and is not registered, rather than failing on every load. ``on_progress``: the
    kernel library's build, where a first run reads the header's vocabulary through it."""
    from playground.models import gguf_parts
    from playground.models.registry import Registry

    note = ""
    p = Path(path).expanduser()
    p = gguf_parts.the_model_in(p)
    if gguf_parts.is_gguf_file(p):
        from playground.engine.fast import kernels
        from playground.engine.fast.gguf_model import describe_file

        kernels.prepare(on_progress)
        note = describe_file(p)
    return (registry or Registry()).add(p), note


def fetch_model(model_id: str, registry: Registry | None = None,
                on_progress: ProgressFn = lambda e: None) -> ModelInfo:
    """A Hugging Face Hub id (``org/Name``, or ``org/Name-GGUF:Q4_K_M``: ``hub_gguf``) fetched into the Hugging Face
    cache, or found there; its entry as the registry lists it (the picker's id)."""
    from playground.models.registry import Registry

    reg = registry or Registry()
    if "/" not in model_id or is_remote(model_id) or Path(model_id).expanduser().exists():
        raise ModelNotFound(f"{model_id!r} is not a Hugging Face id (org/Name, or org/Name-GGUF:Q4_K_M)")
    resolved = reg.resolve(model_id, on_progress, direct_gguf=True)
    where = str(resolved.gguf or resolved.folder)
    return next((info for info in reg.list() if info.path == where), resolved.info)


def load_model(model_id: str, device: str | None = None, dtype: str | None = None,
               on_progress: ProgressFn = lambda e: None, registry: Registry | None = None) -> Any:
    """A TextModel (local: fetched or converted first when needed) or a RemoteTextModel (its server asked once)."""
    if is_remote(model_id):
        from playground.remote.backend import load_remote_model

        on_progress(ProgressEvent(f"Connecting to {model_id}", None))
        return load_remote_model(model_id)
    from playground.engine.text import load_text_model
    from playground.models.registry import Registry

    resolved = (registry or Registry()).resolve(model_id, on_progress, direct_gguf=True)
    on_progress(ProgressEvent(f"Loading {model_id}", None))
    if resolved.gguf is None:
        return load_text_model(model_id, resolved.folder, device, dtype, on_progress=on_progress,
                               adapter=resolved.adapter)
    from playground.engine.gguf_text import load_gguf_text_model

    def converted(folder: Path, why: str) -> Any:
        tm = load_text_model(model_id, folder, device, dtype, on_progress=on_progress)
        tm.weights_source = "GGUF converted by transformers"
        tm.path_reason = "; ".join(r for r in (tm.path_reason, f"the GGUF loader: {why}") if r)
        return tm

    return gguf_or_converted(resolved.gguf, lambda p: load_gguf_text_model(model_id, p, device, dtype,
                                                                            on_progress=on_progress),
                             converted, on_progress)


def gguf_or_converted(gguf: Path, read: Callable[[Path], Any], from_folder: Callable[[Path, str], Any],
                      on_progress: ProgressFn) -> Any:
    """``read(gguf)`` (the engine's own GGUF reader); where that reader cannot take the file (DirectGgufUnsupported,
    not a damaged file), transformers' conversion once, said so, then ``from_folder(converted folder, why)``."""
    from playground.engine.gguf_text import DirectGgufUnsupported
    from playground.models.registry import converted_gguf

    try:
        return read(gguf)
    except DirectGgufUnsupported as exc:
        on_progress(ProgressEvent(f"{exc}; converting it with transformers instead (once, slower)", None))
        try:
            folder = converted_gguf(gguf, on_progress)
        except UnsupportedModel as failed:
            raise UnsupportedModel(f"Cannot load {gguf.name}: {exc}; transformers' GGUF conversion "
                                   f"failed too ({failed})") from failed
        return from_folder(folder, str(exc))


def run_generation(model: Any, request: GenerationRequest, on_event: Callable[[TokenEvent], None] = lambda e: None,
                   cancel: Cancel | None = None) -> GenerationResult:
    """``generate`` on a local model, ``generate_remote`` on a remote one; the same events and result either way."""
    if is_remote_model(model):
        from playground.remote.backend import generate_remote

        return generate_remote(model, request, on_event, cancel)
    return generate(model, request, on_event, cancel)


def can_batch(model: Any) -> bool:
    """Whether several generations on ``model`` can decode together (a local model on a fast runner)."""
    return not is_remote_model(model) and getattr(model, "fast", None) is not None


def run_generations(model: Any, requests: list[GenerationRequest],
                    on_event: Callable[[int, TokenEvent], None] = lambda i, e: None,
                    on_done: Callable[[int, GenerationResult | None, BaseException | None], None] =
                    lambda i, r, e: None, cancel: Cancel | None = None) -> list[Any]:
    """Several requests on one local fast-path model, their decode steps batched (``engine/lockstep.py``);
    returns each request's GenerationResult or the exception it raised."""
    from playground.engine.lockstep import generate_together

    return generate_together(model, requests, on_event, on_done, cancel)


def run_score(model: Any, items: list[ScoreItem], top_logprobs: int = 0) -> list[ScoreResult]:
    """Token log-probabilities of texts: ``score_batch`` locally, ``echo`` + ``logprobs`` on a remote server."""
    if is_remote_model(model):
        from playground.remote.backend import score_remote

        return score_remote(model, items, top_logprobs)
    from playground.engine.score import score_batch

    return score_batch(model, items, top_logprobs)


def sheet_filler(model: Any, batch_size: int, max_new_tokens: int, top: int = 5) -> Any:
    """A SheetFiller (batched on the device) or a RemoteSheetFiller (a few requests in flight): same ``fill``."""
    if is_remote_model(model):
        from playground.remote.fill import RemoteSheetFiller

        return RemoteSheetFiller(model, concurrency=min(batch_size, 4), max_new_tokens=max_new_tokens, top=top)
    from playground.engine.fill import SheetFiller

    return SheetFiller(model, batch_size=batch_size, max_new_tokens=max_new_tokens, top=top)


def load_image_model(model_id: str, device: str | None = None, dtype: str | None = None, allow_pickle: bool = False,
                     on_progress: ProgressFn = lambda e: None, **kwargs: Any) -> Any:
    """An ImageModel (a local diffusers pipeline) or a RemoteImageModel (``/v1/images/generations``)."""
    if is_remote(model_id):
        from playground.remote.images import load_remote_image_model

        return load_remote_image_model(model_id)
    from playground.engine.image import load_image_model as load_local

    return load_local(model_id, device=device, dtype=dtype, allow_pickle=allow_pickle, on_progress=on_progress,
                      **kwargs)


def generate_image(model: Any, request: ImageRequest, on_event: Callable[[StepEvent], None] = lambda e: None,
                   cancel: Cancel | None = None) -> ImageResult:
    """The image engine's ``generate`` on a local model, ``generate_remote_image`` on a remote one."""
    if is_remote_model(model):
        from playground.remote.images import generate_remote_image

        return generate_remote_image(model, request, on_event, cancel)
    from playground.engine.image import generate

    return generate(model, request, on_event, cancel)
