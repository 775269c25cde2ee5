"""Quantized weights kept on disk, so only the first load of a model at a precision pays for quantizing.

One safetensors file per (model files, precision, kernel sources): tensors named ``<layer>.<part>``, and in the
metadata each layer's resolved precision and shape, and a sha256 of all tensor bytes. Anything that does not match
what is wanted now (another precision, a truncated file, bytes changed on disk) is ignored and rewritten: never an
error. Saving is best effort too: a read-only data dir or a full disk costs only the next load its speed (``save``
returns a note saying so), never the load or the completion it was for.

The key holds nothing absolute: the model folder's name and its files' names, sizes and times, and the kernel's
source digest, so a data dir moved elsewhere (the embedded model inside it) keeps its stored weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from playground import paths
from playground.engine.fast.quant import QLinear, resolved_precision

if TYPE_CHECKING:
    import torch

FORMAT = 2
FOLDER = "quantized"
_log = logging.getLogger(__name__)


def store_path(model_folder: Path, precision: str) -> Path:
    """Where this model's weights at ``precision`` are kept: keyed by the weight files' names, sizes and times."""
    # Only int4 depends on the kernel (its layout may change with its source; asking for it builds nothing).
    tag = _kernel_tag() if precision.startswith("int4") else ""
    h = hashlib.sha256(f"{FORMAT}|{precision}|{model_folder.name}|{tag}".encode())
    for f in sorted([*model_folder.glob("*.safetensors"), *model_folder.glob("config.json")]):
        st = f.stat()
        h.update(f"|{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return paths.data_dir() / FOLDER / f"{model_folder.name}-{precision}-{h.hexdigest()[:16]}.safetensors"


def _kernel_tag() -> str:
    """The kernel's source digest (not its library's path, which moves with the data dir)."""
    from playground.engine.fast.kernel_build import source_digest

    return source_digest()[:16]


def checksum(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the tensors' names and bytes, in name order."""
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()


def load(path: Path, wanted: dict[str, str]) -> dict[str, QLinear] | None:
    """The layers in ``path`` if it holds exactly ``wanted`` (name -> precision asked for) and its bytes are the
    ones saved (checksum), else None."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            layers = json.loads(meta.get("layers", "{}"))
            if set(layers) != set(wanted) or meta.get("format") != str(FORMAT):
                return None
            if any(stored != resolved_precision(wanted[name]) for name, (stored, _, _) in layers.items()):
                return None
        # Plain reads into fresh (aligned) memory, not copies out of the file's mapping: kernels expect aligned
        # memory (an unaligned int8 head segfaults), the file may be replaced while the model is in use, and mapped
        # pages a load touched stay resident beside the copies until it ends (the embedded model's load peaked
        # 84 MB over what it keeps).
        from playground.engine.fast.safetensors_read import SafetensorsTensors

        stored = SafetensorsTensors(path.parent, [path])
        tensors = {key: stored[key] for key in stored}
    except Exception:  # noqa: BLE001 - unreadable, truncated, from another version: quantize again
        return None
    if checksum(tensors) != meta.get("sha256"):
        _log.warning("%s: stored weights changed on disk (checksum mismatch); quantizing again", path.name)
        return None
    linears = {}
    for name, (stored, n, k) in layers.items():
        prefix = f"{name}."
        state = {key[len(prefix):]: t for key, t in tensors.items() if key.startswith(prefix)}
        linears[name] = QLinear.restore(stored, int(n), int(k), state)
    return linears


def save(path: Path, linears: dict[str, QLinear]) -> str | None:
    """Write atomically (temp file, then rename); None when saved, else a note on why not (a read-only data dir,
    a full disk): that only costs the next load its speed."""
    from safetensors.torch import save_file

    tensors = {f"{name}.{key}": t.contiguous() for name, lin in linears.items() for key, t in lin.state().items()}
    meta = {name: [lin.precision, lin.n, lin.k] for name, lin in linears.items()}
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(tmp), metadata={"layers": json.dumps(meta), "format": str(FORMAT),
                                               "sha256": checksum(tensors)})
        os.replace(tmp, path)
    except Exception as exc:  # noqa: BLE001 - OSError, safetensors' SafetensorError (its own class): not saved
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        note = (f"Quantized weights not saved ({type(exc).__name__}: {str(exc)[:200]}); the next load quantizes "
                f"again")
        _log.warning("%s: %s", path, note)
        return note
    return None
