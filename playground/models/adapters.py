"""LoRA adapters kept in the data dir: one folder each, listed as variants of their base model (``BASE+name``).

A folder holds peft's ``adapter_config.json`` and ``adapter_model.safetensors`` plus ``playground.json``: the base
model's id, the adapter's name, the training settings, the column it was trained on and a hash of the rows. Folders
appear whole or not at all: training writes to a hidden temp folder and renames it (``publish``). Torch-free: the
registry lists and resolves adapters without loading anything; ``playground.engine.lora`` reads and writes weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playground import paths
from playground.errors import ModelNotFound, ParameterError

SEPARATOR = "+"  # BASE+name
FOLDER = "adapters"
META_FILE = "playground.json"
WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class AdapterInfo:
    """One saved adapter: ``id`` is ``base + "+" + name``."""

    base: str
    name: str
    folder: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return adapter_id(self.base, self.name)

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())


def adapter_id(base: str, name: str) -> str:
    return f"{base}{SEPARATOR}{name}"


def check_name(name: str) -> str:
    """The name, stripped, when it can name an adapter (letters, digits, ``._-``; up to 64); else ParameterError."""
    name = name.strip()
    if not _NAME.match(name):
        raise ParameterError(f"Adapter name {name!r}: use 1-64 letters, digits, '.', '_' or '-' (starting with a "
                             "letter or digit)")
    return name


def adapters_dir() -> Path:
    path = paths.data_dir() / FOLDER
    path.mkdir(parents=True, exist_ok=True)
    return path


def folder_for(base: str, name: str) -> Path:
    """Where ``base+name`` lives: the name plus a short hash of the base, so ids with '/' make no sub-folders."""
    key = hashlib.sha256(base.encode()).hexdigest()[:8]
    return adapters_dir() / f"{check_name(name)}-{key}"


def list_adapters() -> list[AdapterInfo]:
    """Every complete adapter folder, sorted by id; half-written or foreign folders are skipped."""
    out = []
    for folder in sorted(adapters_dir().iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        info = read(folder)
        if info is not None:
            out.append(info)
    return sorted(out, key=lambda a: a.id)


def read(folder: Path) -> AdapterInfo | None:
    """The adapter in ``folder``, or None unless it holds safetensors weights, a config and readable metadata."""
    if not (folder / WEIGHTS_FILE).is_file() or not (folder / CONFIG_FILE).is_file():
        return None
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("base"), str) or not isinstance(meta.get("name"), str):
        return None
    return AdapterInfo(meta["base"], meta["name"], folder, meta)


def find(model_id: str) -> AdapterInfo | None:
    """The saved adapter whose id is ``model_id``; None for any other id (cheap: one split, one folder read)."""
    base, sep, name = model_id.rpartition(SEPARATOR)
    if not sep or not base or not _NAME.match(name):
        return None
    info = read(folder_for(base, name))
    return info if info is not None and info.id == model_id else None


def delete(model_id: str) -> None:
    """Remove an adapter's folder (and its quantized copies); ModelNotFound when there is no such adapter."""
    info = find(model_id)
    if info is None:
        raise ModelNotFound(f"No adapter {model_id!r}")
    aside = info.folder.with_name(f"{_TEMP_PREFIX}deleted-{uuid.uuid4().hex[:8]}")
    os.replace(info.folder, aside)  # gone from listings at once, even if removing the files takes a while
    shutil.rmtree(aside, ignore_errors=True)
    _drop_quantized(info.folder)


def _drop_quantized(folder: Path) -> None:
    """Remove the fast path's quantized copies of an adapter's merged weights (``engine/fast/store.py`` names them
    after the folder the merged model came from)."""
    for stale in (paths.data_dir() / "quantized").glob(f"{folder.name}-*.safetensors"):
        with contextlib.suppress(OSError):
            stale.unlink()


def temp_folder() -> Path:
    """A fresh hidden folder in the adapters dir to write an adapter into before ``publish``."""
    folder = adapters_dir() / f"{_TEMP_PREFIX}{uuid.uuid4().hex[:12]}"
    folder.mkdir()
    return folder


def publish(temp: Path, base: str, name: str, meta: dict[str, Any]) -> AdapterInfo:
    """Write the metadata into ``temp`` and rename it to ``base+name``'s folder (replacing an older one whole)."""
    meta = {**meta, "base": base, "name": check_name(name)}
    (temp / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    target = folder_for(base, name)
    old = None
    if target.exists():
        old = target.with_name(f"{_TEMP_PREFIX}old-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    os.replace(temp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
        _drop_quantized(target)  # they hold the replaced adapter's weights
    info = read(target)
    assert info is not None, "a published adapter has weights, config and metadata"
    return info


def discard(temp: Path) -> None:
    """Remove an unpublished temp folder (a cancelled or failed training)."""
    shutil.rmtree(temp, ignore_errors=True)


def rows_hash(rows: list[list[str]], columns: list[str]) -> str:
    """A short hash of the training table (header + rows), to tell which data an adapter learned."""
    data = json.dumps([columns, rows], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()[:16]
