"""Where a frozen (PyInstaller) bundle keeps the files it carries; Qt-free, no heavy imports.

A bundle has ``sys.frozen`` set and its files under ``sys._MEIPASS`` (the ``_internal`` folder of a onedir build).
The embedded model's GGUF rides at ``<bundle>/models/<name>.gguf`` so that the first launch works offline.
"""

from __future__ import annotations

import sys
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"  # the same file playground.models.embedded extracts from its wheel


def bundle_dir() -> Path | None:
    """Return the bundle's data folder when running frozen, else None (a source checkout or a pip install)."""
    if not getattr(sys, "frozen", False):
        return None
    return Path(getattr(sys, "_MEIPASS", Path(sys.executable).resolve().parent))


def bundled_gguf(root: Path | None = None) -> Path | None:
    """Return the embedded model's GGUF the bundle carries (``<bundle>/models/<name>``), or None if there is none.

    ``root`` defaults to :func:`bundle_dir`; tests pass a folder laid out like a bundle.
    """
    root = root if root is not None else bundle_dir()
    if root is None:
        return None
    path = root / "models" / GGUF_NAME
    return path if path.is_file() else None
