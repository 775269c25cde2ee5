"""The files a command reads and writes: bounded reads, an ``--out`` checked before the work, clear errors."""

from __future__ import annotations

import tempfile
from pathlib import Path

from playground.errors import KnownError

# No model's context holds more text than this; a bigger file (or /dev/zero) is refused before it fills memory.
MAX_TEXT_BYTES = 16 * 1024**2


def read_text(path: Path, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of ``path``, reading at most ``limit`` bytes; KnownError when it cannot, or is larger."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise KnownError(f"Cannot read {what} file {path}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise KnownError(f"The {what} file {path} is over {limit // 1024**2} MB; Playground reads {what} files up "
                         "to that size")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KnownError(f"Cannot read {what} file {path}: it is not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start})") from exc


def check_writable(path: Path, what: str = "--out") -> None:
    """Fail now, before minutes of work, if ``path`` cannot be written: a folder, or a folder that refuses new
    files (missing folders are created, as the write would)."""
    if path.is_dir():
        raise KnownError(f"{what} {path} is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with open(path, "ab"):  # opens for writing without changing a byte
                pass
        else:
            with tempfile.TemporaryFile(dir=path.parent):
                pass
    except OSError as exc:
        raise KnownError(f"Cannot write {what} {path}: {exc.strerror or exc}") from exc


def write_file(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path``, its folder created if missing; KnownError when it cannot."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(raw)
    except OSError as exc:
        raise KnownError(f"Cannot write {path}: {exc.strerror or exc}") from exc
