"""The GGUF metadata reader on vocabulary-sized string arrays: the compiled reader gives the Python loop's strings."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from playground.engine.fast import gguf_read, kernels
from playground.errors import UnsupportedModel

ARRAY, STRING = 9, 8


def _write(path: Path, strings: list[bytes]) -> Path:
    """A GGUF v3 file with no tensors and one key, ``tokenizer.ggml.tokens``, holding ``strings`` as they are."""
    key = b"tokenizer.ggml.tokens"
    body = struct.pack("<Q", len(key)) + key + struct.pack("<IIQ", ARRAY, STRING, len(strings))
    body += b"".join(struct.pack("<Q", len(s)) + s for s in strings)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + body)
    return path


def _vocabulary() -> list[bytes]:
    words = [f"tok{i}".encode() for i in range(3000)]
    words[5] = b""  # empty strings stay
    words[7] = "▁über ✓ 🙂".encode()
    words[11] = b"\xff\xfe broken"  # invalid UTF-8 anywhere in a string
    words[12] = "é".encode()[:1]  # a sequence cut off at a string's end, before the next string's bytes
    words[13] = b"\x80"
    return words


def _read(path: Path, monkeypatch: pytest.MonkeyPatch, compiled: bool) -> list[str]:
    monkeypatch.setenv(kernels.ENV_ENABLE, "1" if compiled else "0")
    with gguf_read.GgufFile(path) as f:
        return f.metadata["tokenizer.ggml.tokens"]


def test_a_vocabulary_reads_the_same_compiled_or_not(tmp_path, monkeypatch):
    if not kernels.available():
        pytest.skip(kernels.unavailable_reason() or "kernel library not built")
    path = _write(tmp_path / "vocab.gguf", _vocabulary())
    compiled = _read(path, monkeypatch, True)
    assert compiled == _read(path, monkeypatch, False)
    assert len(compiled) == 3000 and compiled[5] == "" and compiled[7] == "▁über ✓ 🙂"
    assert compiled[11] == "\ufffd\ufffd broken" and compiled[12] == "\ufffd" and compiled[13] == "\ufffd"


def test_a_string_holding_nul_still_reads_whole(tmp_path, monkeypatch):
    words = _vocabulary()
    words[20] = b"a\x00b"
    path = _write(tmp_path / "nul.gguf", words)
    assert _read(path, monkeypatch, True)[20] == "a\x00b"
    assert _read(path, monkeypatch, True)[21] == "tok21"


@pytest.mark.parametrize("compiled", [True, False])
def test_a_truncated_vocabulary_is_refused_with_the_files_name(compiled, tmp_path, monkeypatch):
    path = _write(tmp_path / "cut.gguf", _vocabulary())
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UnsupportedModel, match="cut.gguf is not a valid GGUF file.*past the end"):
        _read(path, monkeypatch, compiled)
