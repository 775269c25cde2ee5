"""Which browser pages may call ``serve`` (CORS): pages served from this machine (``http://localhost:PORT``,
``http://127.0.0.1:PORT``, ``http://[::1]:PORT``) always; others only when named with ``--cors-origin`` (``*``:
any). The API key still applies: CORS only lets the browser read the answers."""

from __future__ import annotations

import re

_LOCAL = re.compile(r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$")
ALLOWED_HEADERS = "Authorization, Content-Type, OpenAI-Organization, OpenAI-Project"
MAX_AGE_S = 600


def check_origin(origin: str) -> str:
    """An origin as ``--cors-origin`` takes it (``scheme://host[:port]`` or ``*``); ValueError otherwise."""
    origin = origin.strip().rstrip("/")
    if origin != "*" and not re.fullmatch(r"https?://[^/\s?#]+", origin):
        raise ValueError(f"{origin!r} is not an origin; use e.g. https://app.example.com or *")
    return origin


class CorsPolicy:
    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        self.extra = frozenset(check_origin(o) for o in extra)

    def allowed(self, origin: str | None) -> bool:
        if not origin:
            return False
        return "*" in self.extra or origin in self.extra or _LOCAL.match(origin) is not None

    def headers(self, origin: str | None) -> dict[str, str]:
        """Headers for an answer to a request from ``origin`` (none when it is not allowed)."""
        if not self.allowed(origin):
            return {}
        return {"Access-Control-Allow-Origin": origin or "", "Vary": "Origin",
                "Access-Control-Expose-Headers": "Retry-After"}

    def preflight(self, requested_headers: str | None) -> dict[str, str]:
        headers = requested_headers or ALLOWED_HEADERS
        if not re.fullmatch(r"[A-Za-z0-9\-_, ]{0,1000}", headers):
            headers = ALLOWED_HEADERS
        return {"Access-Control-Allow-Methods": "GET, POST, OPTIONS", "Access-Control-Allow-Headers": headers,
                "Access-Control-Max-Age": str(MAX_AGE_S)}
