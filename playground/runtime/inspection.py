"""The Inspect mode's model: the chosen model's own weights, loaded a second time with transformers' eager
attention, so the main engine keeps its fast path (which never forms attention weights) untouched."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from playground.domain.jobs import ProgressEvent
from playground.domain.models import is_remote
from playground.errors import UnsupportedModel

if TYPE_CHECKING:
    from playground.engine.text import TextModel
    from playground.models.registry import Registry


def load_for_inspection(model_id: str, device: str | None = None, dtype: str | None = None,
                        on_progress: Callable[[ProgressEvent], None] = lambda e: None,
                        registry: Registry | None = None) -> TextModel:
    """``model_id`` resolved through the registry (fetched or converted first when needed), loaded for the
    inspector; a remote model is refused: its server sends text, not weights."""
    if is_remote(model_id):
        raise UnsupportedModel(f"{model_id} runs on a remote server: the inspector needs the model's weights "
                               "on this machine; pick a local model")
    from playground.engine.inspect.model import load_inspect_gguf, load_inspect_model
    from playground.models.registry import Registry
    from playground.runtime.dispatch import gguf_or_converted

    resolved = (registry or Registry()).resolve(model_id, on_progress, direct_gguf=True)
    on_progress(ProgressEvent(f"Loading {model_id} with eager attention for inspection", None))
    if resolved.gguf is None:
        return load_inspect_model(model_id, resolved.folder, device, dtype)
    # read directly; transformers' conversion only for what our reader cannot take
    return gguf_or_converted(resolved.gguf, lambda p: load_inspect_gguf(model_id, p, device, dtype, on_progress),
                             lambda folder, why: load_inspect_model(model_id, folder, device, dtype), on_progress)
