"""GGUF models as files on disk, before any is read: the parts of a split GGUF (llama.cpp's ``gguf-split`` writes
``NAME-00001-of-00003.gguf``, ...), the model's name and its size in all; which file is a GGUF (by its content, not
only its name: Ollama's blobs), and which model a folder of GGUF files (a repository's download) holds."""

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
    """The model's name: the file's stem, without a split part's ``-00001-of-00003``; for a file not named as a
    GGUF (an Ollama blob, ``sha256-…``), the name its header gives (``general.name``), else its file name."""
    if path.suffix.lower() != ".gguf":
        return header_name(path) or path.name
    m = _PART.match(path.name)
    return m["stem"] if m is not None and split_parts(path) else path.stem


def header_name(path: Path) -> str | None:
    """``general.name`` from a GGUF header, looked for among the key-values before the first array (general.* keys
    come first as llama.cpp writes them; the vocabulary's arrays are not walked). None where it is not there."""
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(24)
            if len(head) < 24 or head[:4] != b"GGUF":
                return None
            (kv_count,) = struct.unpack("<Q", head[16:24])
            for _ in range(min(kv_count, 64)):
                (n,) = struct.unpack("<Q", f.read(8))
                key = f.read(min(n, 256)).decode("utf-8", "replace")
                (kind,) = struct.unpack("<I", f.read(4))
                if kind == 8:  # a string
                    (n,) = struct.unpack("<Q", f.read(8))
                    if n > 4096:
                        return None
                    value = f.read(n).decode("utf-8", "replace")
                    if key == "general.name":
                        return re.sub(r"[^\w.]+", "-", value).strip("-") or None
                elif kind in _SCALAR_BYTES:
                    f.seek(_SCALAR_BYTES[kind], 1)
                else:  # an array (or a type unknown here): general.name was not before it
                    return None
    except (OSError, struct.error):
        return None
    return None


# GGUF scalar value types: their sizes in bytes (uint8, int8, uint16, int16, uint32, int32, float32, bool, uint64,
# int64, float64)
_SCALAR_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def parts_size(path: Path) -> int:
    """Bytes of the model ``path`` stands for: all its parts when it is one part of a split GGUF."""
    return sum(p.stat().st_size for p in split_parts(path) or [path] if p.is_file())


def is_model_folder(path: Path) -> bool:
    """A transformers (config.json) or diffusers (model_index.json) model folder."""
    return path.is_dir() and ((path / "config.json").is_file() or (path / "model_index.json").is_file())


def gguf_models_of(path: Path) -> list[Path]:
    """The GGUF models of a folder of GGUF files (``models_in_folder``); none for a model folder or a file."""
    return models_in_folder(path) if path.is_dir() and not is_model_folder(path) else []


def models_in_folder(folder: Path) -> list[Path]:
    """The GGUF models a folder holds (a download of a repository's quantizations), each once: a split model by its
    first part, sorted by name; a multimodal model's vision projector (``mmproj-…``) is not one."""
    files = sorted(p for p in folder.glob("*.gguf") if p.is_file() and not p.name.lower().startswith("mmproj"))
    return [p for p in files if (split_parts(p) or [p])[0] == p]


def the_model_in(path: Path, label: str | None = None) -> Path:
    """``path`` as given, or, for a folder of GGUF files that is not a transformers model (no config.json), its one
    GGUF model (a split one by its first part). A folder of several models names them for the user to pick one
    (``label``: what to call the folder, if not its name)."""
    found = gguf_models_of(path)
    if len(found) > 1:
        names = ", ".join(p.name for p in found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
        raise UnsupportedModel(f"{label or path.name} holds {len(found)} GGUF models ({names}): choose one of those "
                               f"files")
    return found[0] if found else path


def is_gguf_file(path: Path) -> bool:
    """A .gguf file, or a file of another name that begins as GGUF does (``GGUF``): Ollama keeps its models as
    ``blobs/sha256-…`` files, and downloads get renamed."""
    if not path.is_file():
        return False
    if path.suffix.lower() == ".gguf":
        return True
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False
