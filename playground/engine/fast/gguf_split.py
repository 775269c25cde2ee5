"""A model stored as one GGUF file or as the parts of a split one (llama.cpp's ``gguf-split``: ``NAME-00001-of-00003
.gguf``, ...; the first part holds the metadata, every part some of the tensors, each part carries ``split.no`` /
``split.count``). ``open_gguf`` gives either as one object: the first part's ``path`` and ``metadata``, every
part's ``tensors``, and ``file_of(name)``, the part (a ``GgufFile``) whose memory map holds a tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from playground.engine.fast.gguf_read import GgufFile, TensorInfo
from playground.errors import DamagedModel
from playground.models.gguf_parts import split_parts


class SplitGguf:
    """The parts of a split GGUF as one file (see the module docstring)."""

    def __init__(self, parts: list[Path]) -> None:
        missing = [p.name for p in parts if not p.is_file()]
        if missing:
            raise DamagedModel(f"{parts[0].name}: a split GGUF of {len(parts)} parts, but "
                               f"{', '.join(missing[:3])} {'is' if len(missing) == 1 else 'are'} not beside it")
        self.files = [GgufFile(p) for p in parts]
        self.path = parts[0]
        self.metadata: dict[str, Any] = self.files[0].metadata
        self.tensors: dict[str, TensorInfo] = {}
        self._owner: dict[str, GgufFile] = {}
        for i, f in enumerate(self.files):
            no, count = f.metadata.get("split.no"), f.metadata.get("split.count")
            if no is not None and (int(no) != i or int(count or 0) != len(parts)):
                raise DamagedModel(f"{f.path.name} says it is part {int(no) + 1} of {count}, not part {i + 1} "
                                   f"of {len(parts)}: the parts are from different splits")
            for name, info in f.tensors.items():
                if name in self.tensors:
                    raise DamagedModel(f"{name} is in both {self._owner[name].path.name} and {f.path.name}")
                self.tensors[name] = info
                self._owner[name] = f
        expected = self.metadata.get("split.tensors.count")
        if expected is not None and int(expected) != len(self.tensors):
            raise DamagedModel(f"{self.path.name}: the split GGUF's parts hold {len(self.tensors)} tensors, "
                               f"its first part says {int(expected)}")

    def file_of(self, name: str) -> GgufFile:
        return self._owner[name]

    def raw(self, name: str) -> np.ndarray:
        return self._owner[name].raw(name)

    def close(self) -> None:
        for f in self.files:
            f.close()


def open_gguf(path: str | Path) -> GgufFile | SplitGguf:
    """``path`` as a GGUF model: the file, or all the parts of the split GGUF it is one part of."""
    path = Path(path)
    parts = split_parts(path)
    if parts is None:
        single = GgufFile(path)
        count = int(single.metadata.get("split.count", 1) or 1)
        if count > 1:
            single.close()
            raise DamagedModel(f"{path.name} is part {int(single.metadata.get('split.no', 0)) + 1} of a GGUF "
                               f"split in {count}, but not named as gguf-split names the parts "
                               f"(NAME-00001-of-{count:05d}.gguf, ...), so the others cannot be found")
        return single
    return SplitGguf(parts)
