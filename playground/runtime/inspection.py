"""The Inspect mode's model: the chosen model's own weights, loaded a second time with transformers' eager
attention, so the main engine keeps its fast path (which never forms attention weights) untouched."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from playground.domain.jobs import ProgressEvent
from playground.domain.models import is_remote
from playground.errors import DamagedModel, UnsupportedModel

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

    registry = registry or Registry()
    resolved = registry.resolve(model_id, on_progress, direct_gguf=True)
    if resolved.gguf is not None:  # read directly; transformers' conversion only for what our reader cannot take
        on_progress(ProgressEvent(f"Loading {model_id} with eager attention for inspection", None))
        try:
            return load_inspect_gguf(model_id, resolved.gguf, device, dtype, on_progress)
        except DamagedModel:
            raise
        except UnsupportedModel as exc:
            on_progress(ProgressEvent(f"{exc}; converting it with transformers instead (once, slower)", None))
        resolved = registry.resolve(model_id, on_progress)
    on_progress(ProgressEvent(f"Loading {model_id} with eager attention for inspection", None))
    return load_inspect_model(model_id, resolved.folder, device, dtype)
