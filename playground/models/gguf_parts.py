"""The file names of a split GGUF (llama.cpp's ``gguf-split`` writes ``NAME-00001-of-00003.gguf``, ...): which
files make up the model that one part belongs to, its name without the part suffix, its size in all."""

from __future__ import annotations

import re
from pathlib import Path

from playground.errors import UnsupportedModel

_PART = re.compile(r"^(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)


def split_parts(path: Path) -> list[Path] | None:
    """Every part of the split GGUF whose part ``path`` is (named as gguf-split names them), first part first; None
    for a name that is not a part's."""
    m = _PART.match(path.name)
    if m is None or int(m["count"]) < 2 or not 1 <= int(m["no"]) <= int(m["count"]):
        return None
    count = int(m["count"])
    return [path.with_name(f"{m['stem']}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]


def model_stem(path: Path) -> str:
    """The model's name: the file's stem, without a split part's ``-00001-of-00003``."""
    m = _PART.match(path.name)
    return m["stem"] if m is not None and split_parts(path) else path.stem


def parts_size(path: Path) -> int:
    """Bytes of the model ``path`` stands for: all its parts when it is one part of a split GGUF."""
    return sum(p.stat().st_size for p in split_parts(path) or [path] if p.is_file())


def models_in_folder(folder: Path) -> list[Path]:
    """The GGUF models a folder holds (a download of a repository's quantizations), each once: a split model by its
    first part, sorted by name."""
    files = sorted(p for p in folder.glob("*.gguf") if p.is_file())
    return [p for p in files if (split_parts(p) or [p])[0] == p]


def the_model_in(path: Path, label: str | None = None) -> Path:
    """``path`` as given, or, for a folder of GGUF files that is not a transformers model (no config.json), its one
    GGUF model (a split one by its first part). A folder of several models names them for the user to pick one
    (``label``: what to call the folder, if not its name)."""
    if not path.is_dir() or (path / "config.json").is_file() or (path / "model_index.json").is_file():
        return path
    found = models_in_folder(path)
    if len(found) > 1:
        names = ", ".join(p.name for p in found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
        raise UnsupportedModel(f"{label or path.name} holds {len(found)} GGUF models ({names}): choose one of those "
                               f"files")
    return found[0] if found else path
