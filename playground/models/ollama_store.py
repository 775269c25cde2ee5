"""Models already pulled with Ollama, read from its own store (no Ollama server needed): each model's manifest
(``manifests/<registry>/<namespace>/<name>/<tag>``, JSON) names its layers by digest, and the one of media type
``application/vnd.ollama.image.model`` is the GGUF file, kept as ``blobs/sha256-<hex>``. The store is
``$OLLAMA_MODELS``, else ``~/.ollama/models`` and the Linux service's ``/usr/share/ollama/.ollama/models``.
Listed as ``ollama:NAME:TAG`` (``ollama:llama3.2:3b``; other namespaces and registries keep theirs:
``ollama:hf.co/org/Name-GGUF:Q4_K_M``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

PREFIX = "ollama:"
MODEL_LAYER = "application/vnd.ollama.image.model"
_DEFAULT_REGISTRY, _DEFAULT_NAMESPACE = "registry.ollama.ai", "library"


@dataclass(frozen=True)
class OllamaModel:
    name: str  # llama3.2:3b, hf.co/org/Name-GGUF:Q4_K_M
    blob: Path
    size_bytes: int


def stores() -> list[Path]:
    """``$OLLAMA_MODELS``; else the user's store and, on Linux, the system service's (``ollama`` user)."""
    if os.environ.get("OLLAMA_MODELS"):
        return [Path(os.environ["OLLAMA_MODELS"]).expanduser()]
    return [Path.home() / ".ollama" / "models", Path("/usr/share/ollama/.ollama/models")]


def models() -> list[OllamaModel]:
    """Every pulled model whose GGUF file is in a store, by name (the first store's where two have it); a damaged or
    partial manifest is passed over."""
    found: dict[str, OllamaModel] = {}
    for store in stores():
        for model in _pulled(store):
            found.setdefault(model.name, model)
    return list(found.values())


def _pulled(store: Path) -> list[OllamaModel]:
    root = store / "manifests"
    found = []
    try:
        manifests = sorted(root.glob("*/*/*/*")) if root.is_dir() else []
    except OSError:  # a store this user may not read
        return []
    for manifest in manifests:
        try:
            layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers", [])
            digest = next(layer["digest"] for layer in layers if layer.get("mediaType") == MODEL_LAYER)
        except (OSError, ValueError, AttributeError, KeyError, StopIteration, TypeError):
            continue
        blob = store / "blobs" / str(digest).replace(":", "-")
        try:
            if not blob.is_file():
                continue  # a pull that has not finished
            size = blob.stat().st_size
        except OSError:  # a blob this user may not look at (the manifests could be read)
            continue
        registry, namespace, name, tag = manifest.relative_to(root).parts
        if registry == _DEFAULT_REGISTRY:
            full = name if namespace == _DEFAULT_NAMESPACE else f"{namespace}/{name}"
        else:
            full = f"{registry}/{namespace}/{name}"
        found.append(OllamaModel(f"{full}:{tag}", blob, size))
    return found


def find(model_id: str) -> OllamaModel | None:
    """``ollama:NAME[:TAG]`` (the tag ``latest`` where none is given) among the pulled models."""
    if not model_id.startswith(PREFIX):
        return None
    name = model_id[len(PREFIX):]
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return next((m for m in models() if m.name == name), None)
