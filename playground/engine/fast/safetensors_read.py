"""An HF safetensors file's tensors by name, read when asked for (``SafetensorsTensors``): plain reads into fresh,
aligned memory, not a memory map (mapped pages a load touches stay resident, and count in the process's peak,
beside the copies made of them)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from playground.errors import DamagedModel

if TYPE_CHECKING:
    import torch

_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64", "I8": "int8", "U8": "uint8",
           "I16": "int16", "I32": "int32", "I64": "int64", "BOOL": "bool"}


class SafetensorsTensors(Mapping):
    """The tensors of an HF folder's ``*.safetensors`` files by name, each read from its file when asked for.

    Plain reads, not a memory map: mapped pages a load touches count in the process's peak resident memory
    even after the weights are quantized and dropped; read this way, only the tensor being quantized does."""

    def __init__(self, folder: Path, files: list[Path] | None = None) -> None:
        """``folder``'s ``*.safetensors``, or just ``files``."""
        import json
        import struct

        self._where: dict[str, tuple[Path, int, int, str, list[int]]] = {}
        for path in sorted(folder.glob("*.safetensors")) if files is None else files:
            with open(path, "rb") as f:
                (size,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(size))
            last = 0
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                begin, end = info["data_offsets"]
                last = max(last, end)
                self._where[name] = (path, 8 + size + begin, end - begin, info["dtype"], list(info["shape"]))
            have, want = path.stat().st_size, 8 + size + last
            if have < want:  # what a stopped download leaves; told before any layer is read
                raise DamagedModel(f"{path.parent.name}/{path.name} is cut short ({have:,} of its {want:,} bytes): "
                                   f"a download that stopped? Fetch it again")

    def __getitem__(self, name: str) -> torch.Tensor:
        import torch

        path, offset, nbytes, dtype, shape = self._where[name]
        buf = torch.empty(nbytes, dtype=torch.uint8)
        with open(path, "rb") as f:
            f.seek(offset)
            if f.readinto(buf.numpy()) != nbytes:
                raise OSError(f"{path.name}: {name} is cut short")
        return buf.view(getattr(torch, _DTYPES[dtype])).reshape(shape)

    def __contains__(self, name: object) -> bool:  # Mapping's would read the whole tensor to find out
        return name in self._where

    def get(self, name: str, default: object = None) -> object:  # likewise: no read just to miss
        return self[name] if name in self._where else default

    def numel(self) -> int:
        """Parameters in all files (from the headers only)."""
        import math

        return sum(math.prod(shape) for *_, shape in self._where.values())

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)
