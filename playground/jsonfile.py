"""Small JSON files in the data dir (preferences, user models, endpoints): read whole or set aside, written atomically.

A file that is not a JSON object is renamed ``NAME.damaged-<time>`` (kept for the user, never deleted) and read as
empty: a hand-broken settings file must not stop the app. Writes go to a unique temp file in the same folder, then
``os.replace``: a crash leaves the old file whole, and two running instances never share a temp name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def load_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; {} when the file is missing, unreadable, or damaged (then set aside)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError):
        text = None
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        return data
    quarantine(path)
    return {}


def quarantine(path: Path) -> Path | None:
    """Rename a damaged ``path`` aside; returns the new name (None when it could not be moved)."""
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        path.replace(aside)
    except OSError:
        return None
    return aside


def save(path: Path, data: Any, private: bool = False) -> None:
    """Write ``data`` as JSON atomically (see ``write_atomic``)."""
    write_atomic(path, json.dumps(data, indent=2), private)


def write_atomic(path: Path, text: str, private: bool = False) -> None:
    """Replace ``path`` with ``text`` in one step; ``private``: owner-only (0600) from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if not private:  # mkstemp creates 0600; ordinary files get the usual umask-derived mode
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
