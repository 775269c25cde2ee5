"""SentencePiece BPE without a merges table: a tokenizers pre-tokenizer that cuts each piece of text into the tokens
the merges-table BPE of ``gguf_tokenizer`` would give, by the library's ``pg_spm_split`` (``csrc/gguf_vocab.cpp``).

The tokenizers library builds a BPE model's merges table at ~1.2 µs a merge: 0.75 s of Gemma's first load (515k
merges, every split of a token into two tokens). The same ranking needs only the token table, which the library
builds in C++ in ~0.05 s. The tokenizer then holds the vocabulary alone (``ignore_merges``: a piece that is a token
is that token), and a piece that is one unknown character falls back to its bytes there, as before.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from playground.engine.fast import kernels


def nul_joined(tokens: list[str]) -> bytes | None:
    """The tokens as one UTF-8 string joined by NUL, as the library's vocabulary functions take them; None for no
    tokens, or where a token holds a NUL itself."""
    text = "\x00".join(tokens)
    if not tokens or text.count("\x00") != len(tokens) - 1:
        return None
    return text.encode("utf-8", "surrogatepass")


class SpmSplit:
    """A ``tokenizers.pre_tokenizers.PreTokenizer.custom`` object: each piece is split into its tokens' spans."""

    def __init__(self, handle: int, split: Any, free: Any) -> None:
        self._handle, self._split_fn, self._free = handle, split, free

    @classmethod
    def build(cls, tokens: list[str], scores: np.ndarray) -> SpmSplit | None:
        """The splitter for this vocabulary (``scores`` float64, one per token), or None where the library is not
        built, or the vocabulary is one its run would not reproduce exactly (a byte without its fallback token,
        a token joining a byte token to another, a NUL inside a token): the caller builds the merges table then."""
        new = kernels.c_function("pg_spm_new", ctypes.c_void_p,
                                 [ctypes.c_char_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64])
        split = kernels.c_function("pg_spm_split", ctypes.c_int64,
                                   [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64, ctypes.c_void_p])
        free = kernels.c_function("pg_spm_free", None, [ctypes.c_void_p])
        joined = nul_joined(tokens)
        scores = np.ascontiguousarray(scores, dtype=np.float64)
        if new is None or split is None or free is None or joined is None or scores.shape != (len(tokens),):
            return None
        handle = new(joined, len(joined), scores.ctypes.data, len(tokens))
        return cls(handle, split, free) if handle else None

    def pre_tokenize(self, pretok: Any) -> None:
        pretok.split(self._pieces)

    def _pieces(self, _index: int, normalized: Any) -> list[Any]:
        text = str(normalized).encode("utf-8", "surrogatepass")
        if not text:
            return [normalized]
        ends = np.empty(len(text), dtype=np.int64)  # a piece holds a character at least
        count = self._split_fn(self._handle, text, len(text), ends.ctypes.data)
        if count < 0:
            raise RuntimeError("pg_spm_split failed")
        cuts = [0, *ends[:count].tolist()]
        return [normalized[cuts[i]:cuts[i + 1]] for i in range(count)]

    def __del__(self) -> None:
        if getattr(self, "_handle", None):
            self._free(self._handle)
            self._handle = None
