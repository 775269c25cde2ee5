"""Models dropped on the window: local .gguf files and model folders (config.json), the two kinds "Add model…"
takes. Tabs that take other files dropped on them (the Sheet's tables, the Image tab's PNGs) leave these to the
window."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData

from playground.models.gguf_parts import gguf_models_of, is_gguf_file, is_model_folder


def is_model(path: str) -> bool:
    """A GGUF file (by its content: any name), a folder holding a model's config (what ``Registry.add`` takes), or a
    folder of GGUF files (its one model is added; of several, the user picks one: ``ModelMenu.add``)."""
    p = Path(path)
    if p.is_file():
        return is_gguf_file(p)
    return is_model_folder(p) or bool(gguf_models_of(p))


def local_files(mime: QMimeData) -> list[str]:
    """The dropped local paths, in the order dropped."""
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []


def model_paths(mime: QMimeData) -> list[str]:
    """The dropped local paths that are models, in the order dropped."""
    return [p for p in local_files(mime) if is_model(p)]
