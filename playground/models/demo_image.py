"""The embedded demo text-to-image model ("demo-shapes"), shipped in assets/ as a diffusers folder.

It knows coloured circles, squares and triangles (see playground.tasks.shapes); the UI labels it a demo model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playground import paths
from playground.domain.models import ModelInfo

DEMO_IMAGE_ID = "demo-shapes"


def demo_image_folder() -> Path:
    """The shipped folder (assets/demo_image_model)."""
    return paths.assets_dir() / "demo_image_model"


def demo_image_info() -> ModelInfo:
    """The registry entry for the demo model."""
    folder = demo_image_folder()
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.is_dir() else 0
    return ModelInfo(id=DEMO_IMAGE_ID, kind="image", source="embedded", path=str(folder), size_bytes=size,
                     ready=(folder / "model_index.json").is_file())


def playground_meta(folder: Path) -> dict[str, Any]:
    """The folder's playground.json (demo flag, default size/steps/guidance, preview factors), or {}."""
    try:
        data = json.loads((folder / "playground.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
