"""OpenAI-shaped errors of ``serve``: ``{"error": {"message", "type", "param", "code"}}`` with an HTTP status."""

from __future__ import annotations

import logging
from concurrent.futures import CancelledError
from typing import Any

from playground.errors import ContextOverflow, KnownError, OutOfMemory, ParameterError

log = logging.getLogger("playground.serve")


class ApiError(Exception):
    """An OpenAI-style error answer."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def shutting_down() -> ApiError:
    return ApiError(503, "the server is shutting down; retry on another server or after it restarts", "server_error",
                    code="shutting_down")


def api_error(exc: BaseException) -> ApiError:
    """The answer for an exception from the engine: a known condition as 4xx/5xx with its message, a bug as a
    500 (its traceback logged once)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, CancelledError):  # still queued when the server stopped
        return shutting_down()
    if isinstance(exc, ContextOverflow):
        return ApiError(400, str(exc), code="context_length_exceeded")
    if isinstance(exc, OutOfMemory):
        return ApiError(503, str(exc), "server_error")
    if isinstance(exc, ParameterError):
        return ApiError(400, str(exc))
    if isinstance(exc, KnownError):
        return ApiError(500, str(exc), "server_error")
    log.error("internal error while serving a request", exc_info=exc)
    return ApiError(500, f"internal server error ({type(exc).__name__})", "server_error")
