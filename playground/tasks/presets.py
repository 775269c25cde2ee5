"""Presets shipped in ``assets/presets/``: one JSON file each, tagged with the mode it belongs to."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playground import paths


@dataclass(frozen=True)
class Preset:
    name: str
    mode: str
    description: str = ""
    fields: dict[str, Any] = field(default_factory=dict)  # mode-specific inputs (source, prompt ...)
    params: dict[str, Any] = field(default_factory=dict)  # generation parameters to apply


def load_presets(mode: str, folder: Path | None = None) -> list[Preset]:
    """Presets for ``mode`` sorted by their ``order`` then name; unreadable files are skipped."""
    folder = folder or paths.assets_dir() / "presets"
    found: list[tuple[int, Preset]] = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if data.get("mode") != mode:
            continue
        found.append((int(data.get("order", 100)), Preset(
            name=data["name"], mode=mode, description=data.get("description", ""),
            fields=dict(data.get("fields", {})), params=dict(data.get("params", {})))))
    return [p for _, p in sorted(found, key=lambda x: (x[0], x[1].name))]
