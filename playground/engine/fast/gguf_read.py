"""A GGUF file's metadata and tensor table, with the tensor data memory-mapped (nothing is copied here).

The container (llama.cpp's ``docs/gguf.md``): magic ``GGUF``, version (2 or 3), tensor count, key/value count; the
key/values (typed scalars, strings, arrays); one info per tensor (name, dims innermost first, ggml type, offset
into the data section); the data section, starting at the next multiple of ``general.alignment`` (default 32).

gguf-py's ``GGUFReader`` builds a Python object per array element (2 s for SmolLM2's 49k-token vocabulary, 10 s
for Gemma-3's 262k); here numeric arrays are one ``np.frombuffer`` and string arrays one tight loop.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from playground.errors import DamagedModel

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# GGUF value types -> struct format (scalars) or numpy dtype (arrays).
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_DTYPES = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "<u1", 10: "<u8", 11: "<i8",
           12: "<f8"}
STRING, ARRAY = 8, 9

# ggml tensor types: id -> (name, weights per block, bytes per block). The ones the loader repacks, and the
# others only by name so that an unsupported file says what it holds.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    type_id: int
    shape: tuple[int, ...]  # numpy order: outermost first ([out, in] for a weight)
    offset: int  # absolute, in the file
    nbytes: int

    @property
    def type_name(self) -> str:
        return GGML_TYPES.get(self.type_id, (f"type {self.type_id}", 0, 0))[0]


class GgufFile:
    """An open GGUF file: ``metadata`` (key -> value), ``tensors`` (name -> TensorInfo), ``raw(name)`` (bytes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                # Copy-on-write: a writable buffer for torch.frombuffer, pages still shared with the page cache
                # (nothing here writes to them).
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        except (OSError, ValueError) as exc:  # ValueError: an empty file cannot be mapped
            raise DamagedModel(f"{self.path.name} cannot be read as a GGUF file: {exc}") from exc
        self._buf = memoryview(self._map)
        try:
            self._parse()
        except (struct.error, IndexError, ValueError, UnicodeDecodeError, OverflowError) as exc:
            self.close()
            why = str(exc) if type(exc) is ValueError else f"{type(exc).__name__}: {exc}"  # ValueError: ours, worded
            raise DamagedModel(f"{self.path.name} is not a valid GGUF file: {why}") from exc

    # -- parsing ----------------------------------------------------------------------------------------------
    def _parse(self) -> None:
        buf = self._buf
        if bytes(buf[:4]) != MAGIC:
            raise ValueError("no GGUF magic at the start")
        version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
        if version not in (2, 3):
            raise ValueError(f"GGUF version {version} (2 and 3 are supported)")
        self.version = version
        pos = 24
        self.metadata: dict[str, Any] = {}
        for _ in range(n_kv):
            key, pos = self._string(pos)
            (vtype,) = struct.unpack_from("<I", buf, pos)
            self.metadata[key], pos = self._value(vtype, pos + 4)
        infos = []
        for _ in range(n_tensors):
            name, pos = self._string(pos)
            (n_dims,) = struct.unpack_from("<I", buf, pos)
            dims = struct.unpack_from(f"<{n_dims}Q", buf, pos + 4)
            type_id, offset = struct.unpack_from("<IQ", buf, pos + 4 + 8 * n_dims)
            pos += 4 + 8 * n_dims + 12
            infos.append((name, type_id, tuple(reversed(dims)), offset))
        alignment = int(self.metadata.get("general.alignment", DEFAULT_ALIGNMENT)) or DEFAULT_ALIGNMENT
        self.data_start = -(-pos // alignment) * alignment
        self.tensors: dict[str, TensorInfo] = {}
        for name, type_id, shape, offset in infos:
            _, block, size = GGML_TYPES.get(type_id, ("", 0, 0))
            count = int(np.prod(shape)) if shape else 1
            nbytes = count // block * size if block else 0
            start = self.data_start + offset
            if block and (count % block or start + nbytes > len(buf)):
                raise ValueError(f"tensor {name} runs past the end of the file (truncated?)")
            self.tensors[name] = TensorInfo(name, type_id, shape, start, nbytes)

    def _string(self, pos: int) -> tuple[str, int]:
        (n,) = struct.unpack_from("<Q", self._buf, pos)
        end = pos + 8 + n
        if end > len(self._buf):
            raise ValueError("a string runs past the end of the file")
        return str(self._buf[pos + 8:end], "utf-8"), end

    def _value(self, vtype: int, pos: int) -> tuple[Any, int]:
        if vtype == STRING:
            return self._string(pos)
        if vtype == ARRAY:
            etype, count = struct.unpack_from("<IQ", self._buf, pos)
            pos += 12
            if etype == STRING:
                return self._strings(pos, count)
            if etype not in _DTYPES:
                raise ValueError(f"array of value type {etype}")
            dtype = np.dtype(_DTYPES[etype])
            arr = np.frombuffer(self._buf, dtype=dtype, count=count, offset=pos).copy()
            return (arr.astype(bool) if etype == 7 else arr), pos + count * dtype.itemsize
        fmt = _SCALARS.get(vtype)
        if fmt is None:
            raise ValueError(f"value type {vtype}")
        (value,) = struct.unpack_from(fmt, self._buf, pos)
        return value, pos + struct.calcsize(fmt)

    def _strings(self, pos: int, count: int) -> tuple[list[str], int]:
        """A string array: joined by the compiled library and decoded at once for a vocabulary-sized one, else one
        pass slicing the map (decoding each string as it goes). Both decode invalid UTF-8 the same way: a NUL
        between strings ends a broken sequence as the end of a string does."""
        if count >= _JOINED_MIN:
            joined = _joined_strings(self._map, pos, count)
            if joined is not None:
                return joined
        data = self._map  # mmap slicing gives bytes
        out: list[str] = []
        append = out.append
        from_bytes = int.from_bytes
        for _ in range(count):
            n = from_bytes(data[pos:pos + 8], "little")
            pos += 8
            append(data[pos:pos + n].decode("utf-8", "replace"))
            pos += n
        if pos > len(data):
            raise ValueError("a string array runs past the end of the file")
        return out, pos

    # -- data -------------------------------------------------------------------------------------------------
    def buffer(self) -> mmap.mmap:
        """The whole file, memory-mapped (copy-on-write: writable, never written), for ``torch.frombuffer``."""
        return self._map

    def file_of(self, name: str) -> GgufFile:
        """The file whose memory map holds tensor ``name``: this one (a split GGUF's parts differ: gguf_split)."""
        return self

    def raw(self, name: str) -> np.ndarray:
        """The tensor's bytes as a read-only uint8 array over the memory map (no copy)."""
        info = self.tensors[name]
        return np.frombuffer(self._buf, dtype=np.uint8, count=info.nbytes, offset=info.offset)

    def close(self) -> None:
        """Drop this object's view of the file; arrays handed out by ``raw`` keep the mapping alive."""
        try:
            self._buf.release()
        except BufferError:  # arrays from raw() still use it: the map closes when the last of them goes
            pass

    def __enter__(self) -> GgufFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_JOINED_MIN = 1024  # string arrays this long go through the compiled library (a vocabulary, its merges)


def _joined_strings(data: mmap.mmap, pos: int, count: int) -> tuple[list[str], int] | None:
    """``_strings`` through the library's ``gguf_strings``; None where it is not built or a string holds a NUL."""
    from playground.engine.fast import kernels

    if not kernels.available():
        return None
    import torch

    region = torch.frombuffer(data, dtype=torch.uint8, offset=pos)  # a view of the map, no copy
    try:
        joined, used, clean = torch.ops.playground.gguf_strings(region, count)
    except RuntimeError as exc:
        raise ValueError(str(exc).splitlines()[0]) from exc
    finally:
        del region
    if not clean:
        return None
    return joined.numpy().tobytes().decode("utf-8", "replace").split("\x00"), pos + used
