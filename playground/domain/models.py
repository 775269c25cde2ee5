"""Model ids and registry entries: local ids, ``remote:<endpoint>/<model>`` ids, and ``ModelInfo``.

Remote model ids look like ``remote:<endpoint>/<model>``; ``remote:<endpoint>`` alone means the endpoint's default
model. Import-cheap, so the registry, the engines and the UI can all use them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

REMOTE_PREFIX = "remote:"
_IMAGE_NAMES = re.compile(r"dall-?e|gpt-image|stable-?diffusion|sdxl|sd-?turbo|sd[-_]?[123]\b|flux|diffusion|imagen|"
                          r"kandinsky|pixart|image", re.IGNORECASE)


def is_remote(model_id: str | None) -> bool:
    """True for ``remote:...`` ids."""
    return bool(model_id) and str(model_id).startswith(REMOTE_PREFIX)


def remote_id(endpoint: str, model: str) -> str:
    """``remote:<endpoint>/<model>``."""
    return f"{REMOTE_PREFIX}{endpoint}/{model}"


def split_remote_id(model_id: str) -> tuple[str, str]:
    """(endpoint name, model name) of a remote id; the model is "" when the id names only the endpoint.

    The endpoint name ends at the first "/": model names may hold more ("meta-llama/Llama-3.1-8B").
    """
    if not is_remote(model_id):
        raise ValueError(f"{model_id!r} is not a remote model id (remote:ENDPOINT/MODEL)")
    endpoint, _, model = model_id[len(REMOTE_PREFIX):].partition("/")
    return endpoint, model


def looks_like_image_model(name: str) -> bool:
    """A guess from the name (a server's /v1/models does not say what a model does): dall-e, sdxl, flux …"""
    return bool(_IMAGE_NAMES.search(name))


@dataclass(frozen=True)
class ModelInfo:
    """A registry entry."""

    id: str
    kind: str  # "text" | "image"
    source: str  # "embedded" | "hf-cache" | "ollama" | "folder" | "gguf" | "remote"
    path: str | None = None
    size_bytes: int = 0
    ready: bool = True  # False when the embedded model still needs its first-run conversion
    missing: bool = False  # a user-added file or folder that is no longer where it was added from

    @property
    def removable(self) -> bool:
        """Whether ``Registry.remove`` forgets it (models the user added; adapters have their own dialog)."""
        return self.source in ("folder", "gguf")

    def as_dict(self) -> dict[str, Any]:
        """``playground models --json``'s shape, kept as scripts read it (a missing file: ready false)."""
        return {"id": self.id, "kind": self.kind, "source": self.source, "path": self.path,
                "size_bytes": self.size_bytes, "ready": self.ready}
