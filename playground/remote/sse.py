"""Reading a server's answer with bounded memory: server-sent events line by line, and JSON bodies, each capped so a
broken or hostile server (a 100 MB "token", an endless line) cannot exhaust memory."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from playground.errors import RemoteProtocolError

MAX_LINE = 4 * 2**20  # one SSE line (a chunk holds a token or a few, with their logprobs: kilobytes)
MAX_BODY = 64 * 2**20  # one JSON answer (images come base64-encoded in these)


def lines(response: httpx.Response, name: str, path: str, limit: int = MAX_LINE) -> Iterator[str]:
    """The response's lines (without their endings); RemoteProtocolError for a line over ``limit`` bytes."""
    buffer = bytearray()
    for chunk in response.iter_bytes():
        buffer += chunk
        while True:
            cut = _line_end(buffer)
            if cut is None:
                break
            end, skip = cut
            yield buffer[:end].decode("utf-8", errors="replace")
            del buffer[:end + skip]
        if len(buffer) > limit:
            raise RemoteProtocolError(f"{name}: a line of the stream from {path} is over {limit // 2**20} MB; "
                                      "the answer was cut off (the server is sending something other than tokens)")
    if buffer:
        yield buffer.decode("utf-8", errors="replace")


def _line_end(buffer: bytearray) -> tuple[int, int] | None:
    """(index of the first line ending, its length: \\r\\n, \\n or \\r), or None when no full line is buffered."""
    n, r = buffer.find(b"\n"), buffer.find(b"\r")
    if n < 0 and r < 0:
        return None
    if r >= 0 and (n < 0 or r < n):
        if r == len(buffer) - 1:
            return None  # a \r at the end may be the first half of \r\n: wait for more
        return (r, 2) if buffer[r + 1:r + 2] == b"\n" else (r, 1)
    return n, 1


def body(response: httpx.Response, name: str, path: str, limit: int = MAX_BODY) -> bytes:
    """The whole response body; RemoteProtocolError when it is over ``limit`` bytes."""
    data = bytearray()
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) > limit:
            raise RemoteProtocolError(f"{name}: the answer from {path} is over {limit // 2**20} MB; not read")
    return bytes(data)
