"""Where Playground keeps its data: platformdirs by default, ``PLAYGROUND_HOME`` or ``--data-dir`` to override."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from playground.errors import KnownError

APP_NAME = "playground"
ENV_HOME = "PLAYGROUND_HOME"

_override: Path | None = None


class DataDirError(KnownError):
    """The data folder asked for cannot be used (a file, unknown ~user, too long, not writable)."""


def set_data_dir(path: str | os.PathLike[str] | None) -> None:
    """Override the data dir for this process (the ``--data-dir`` flag); ``None`` restores the default."""
    global _override
    _override = _absolute(path, "--data-dir") if path else None


def _absolute(path: str | os.PathLike[str], what: str) -> Path:
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, OSError, ValueError) as exc:  # ~nosuchuser, a loop of links, a NUL byte
        raise DataDirError(f"{what} {str(path)!r} cannot be used as the data folder: {exc}") from exc


def data_dir() -> Path:
    """Return the data dir, created if missing: --data-dir, then $PLAYGROUND_HOME, then the platform default.
    Raises DataDirError when it cannot be a folder here."""
    if _override is not None:
        root = _override
    elif os.environ.get(ENV_HOME):
        root = _absolute(os.environ[ENV_HOME], f"${ENV_HOME}")
    else:
        root = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"Cannot use {str(root)[:300]} as the data folder ({exc.strerror or exc}); choose another "
                           f"with --data-dir or ${ENV_HOME}") from exc
    return root


def models_dir() -> Path:
    """Converted and user-added models live here."""
    return subdir("models")


def downloads_dir() -> Path:
    """Downloaded archives (e.g. the embedded model's wheel) are cached here."""
    return subdir("downloads")


def subdir(name: str) -> Path:
    """``data_dir() / name``, created if missing; DataDirError when it cannot be (e.g. a file holds that name)."""
    path = data_dir() / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"Cannot use {path} as a folder ({exc.strerror or exc}); move what is there away") from exc
    return path


def assets_dir() -> Path:
    """The shipped assets folder (presets, icons), next to the packages in a source checkout or a bundle."""
    return Path(__file__).resolve().parent.parent / "assets"
