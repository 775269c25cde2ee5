"""One line from a failed remote call: the server's own message, a transport failure's reason, Retry-After."""

from __future__ import annotations

import ssl
import time
from typing import Any

MAX_ERROR_CHARS = 300


def is_tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())[:MAX_ERROR_CHARS]


def error_text(data: Any) -> str:
    """The message of an OpenAI-style ``{"error": {"message"}}``, FastAPI's ``{"detail"}`` or a bare string."""
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            return str(err.get("message") or err)
        if isinstance(err, list) and err:  # FastAPI validation errors
            first = err[0]
            if isinstance(first, dict):
                loc = ".".join(str(x) for x in first.get("loc", []) if x != "body")
                return f"{loc}: {first.get('msg', first)}" if loc else str(first.get("msg", first))
            return str(first)
        if err is not None:
            return str(err)
    return str(data)


def retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
