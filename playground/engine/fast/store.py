"""Quantized weights kept on disk, so only the first load of a model at a precision pays for quantizing.

One safetensors file per (model files, precision, kernel build): tensors named ``<layer>.<part>``, and in the
metadata each layer's resolved precision and shape. Anything that does not match what is wanted now (another
precision, the kernel became (un)available, a truncated file) is ignored and rewritten: never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from playground import paths
from playground.engine.fast.quant import QLinear, resolved_precision

FORMAT = 1
FOLDER = "quantized"


def store_path(model_folder: Path, precision: str) -> Path:
    """Where this model's weights at ``precision`` are kept: keyed by the weight files' names, sizes and times."""
    # Only int4 depends on the kernel's build (asking for it builds the kernel, which int8/bf16 never need).
    tag = _kernel_tag() if precision.startswith("int4") else ""
    h = hashlib.sha256(f"{FORMAT}|{precision}|{model_folder.resolve()}|{tag}".encode())
    for f in sorted(model_folder.glob("*.safetensors")):
        st = f.stat()
        h.update(f"|{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return paths.data_dir() / FOLDER / f"{model_folder.name}-{precision}-{h.hexdigest()[:16]}.safetensors"


def _kernel_tag() -> str:
    """The int4 kernel's build (its layout may change with its source); empty when it is not loaded."""
    try:
        from playground.engine.fast import int4_kernel
    except ImportError:
        return ""
    return str(int4_kernel.build_info().get("library") or "") if int4_kernel.available() else ""


def load(path: Path, wanted: dict[str, str]) -> dict[str, QLinear] | None:
    """The layers in ``path`` if it holds exactly ``wanted`` (name -> precision asked for), else None."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("layers", "{}"))
            if set(meta) != set(wanted):
                return None
            linears = {}
            for name, (stored, n, k) in meta.items():
                if stored != resolved_precision(wanted[name]):
                    return None
                prefix = f"{name}."
                # Copied out of the file's mapping: kernels expect aligned memory (an unaligned int8 head
                # segfaults), and the file may be replaced while the model is in use.
                state = {key[len(prefix):]: f.get_tensor(key).clone() for key in f.keys() if key.startswith(prefix)}
                linears[name] = QLinear.restore(stored, int(n), int(k), state)
    except Exception:  # noqa: BLE001 - unreadable, truncated, from another version: quantize again
        return None
    return linears


def save(path: Path, linears: dict[str, QLinear]) -> None:
    """Write atomically (temp file, then rename); a failure to write only costs the next load its speed."""
    from safetensors.torch import save_file

    tensors = {f"{name}.{key}": t.contiguous() for name, lin in linears.items() for key, t in lin.state().items()}
    meta = {name: [lin.precision, lin.n, lin.k] for name, lin in linears.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata={"layers": json.dumps(meta), "format": str(FORMAT)})
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
