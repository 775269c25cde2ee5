"""A token's own bytes (OpenAI's ``bytes`` field): a token that ends inside a multi-byte character has no text of
its own but does have bytes, and the bytes of a completion's tokens concatenate to its UTF-8 text."""

from __future__ import annotations

import functools
import re
import weakref
from typing import Any

_HEX_BYTE = re.compile(r"<0x([0-9A-Fa-f]{2})>")  # SentencePiece byte fallback
_MEMO: weakref.WeakKeyDictionary[Any, dict[int, bytes]] = weakref.WeakKeyDictionary()


@functools.cache
def byte_chars() -> tuple[str, ...]:
    """GPT-2's byte-level alphabet: the printable stand-in character of each byte 0..255 (``ByteLevel.alphabet()``
    is the same set, unordered)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, n = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return tuple(chars[b] for b in range(256))


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """``byte_chars`` reversed: a stand-in character -> its byte."""
    return {c: b for b, c in enumerate(byte_chars())}


def _is_byte_level(tokenizer: Any) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and "ByteLevel" in repr(backend.decoder)


def token_bytes(tokenizer: Any, token_id: int) -> bytes:
    """The bytes ``token_id`` stands for (memoised per tokenizer)."""
    memo = _MEMO.get(tokenizer)
    if memo is None:
        memo = _MEMO[tokenizer] = {-1: b"", -2: bytes([_is_byte_level(tokenizer)])}
    out = memo.get(token_id)
    if out is None:
        out = memo[token_id] = _compute(tokenizer, token_id, bool(memo[-2][0]))
    return out


def _compute(tokenizer: Any, token_id: int, byte_level: bool) -> bytes:
    piece = tokenizer.convert_ids_to_tokens(token_id)
    if not isinstance(piece, str):
        return b""
    if token_id in set(getattr(tokenizer, "all_special_ids", ())):
        return piece.encode()
    if (m := _HEX_BYTE.fullmatch(piece)) is not None:
        return bytes([int(m.group(1), 16)])
    if byte_level:
        table = _byte_decoder()
        if all(c in table for c in piece):
            return bytes(table[c] for c in piece)
    return piece.replace("\u2581", " ").encode()
