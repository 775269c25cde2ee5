"""Errors the user can act on, kept apart from bugs.

A ``KnownError`` carries one clear sentence for the status bar or stderr; anything else is a bug and is
shown with its traceback.
"""


class KnownError(Exception):
    """A user or environment problem (missing model, bad file, prompt too long) with a readable message."""


class ParameterError(KnownError):
    """A setting out of range or malformed (temperature -1, ``top_p=z``, a bad column spec): the message names it.

    Only these, never a bare ``ValueError``, are shown as the user's mistake: a ValueError from inside the engine
    is a bug and is shown as one.
    """


class ModelNotFound(KnownError):
    """The model id, folder or file does not resolve to a loadable model."""


class UnsupportedModel(KnownError):
    """The model exists but is of an architecture or format this engine does not load."""


class DamagedModel(UnsupportedModel):
    """The file is not a whole, readable model of its format (truncated, corrupt, a split model missing parts):
    no loader can read it, so nothing tries another one and nothing registers it."""


class ContextOverflow(KnownError):
    """The prompt does not fit the model's context window."""


class BrokenOutput(KnownError):
    """The model's scores for the next token are not numbers (NaN): corrupt weights, or an overflow at a reduced
    precision; nothing sensible can be sampled from them."""


class OutOfMemory(KnownError):
    """The device ran out of memory; memory has been freed."""


class RemoteError(KnownError):
    """A remote (OpenAI-compatible) server could not be used; the message says which and why, never the key."""


class RemoteUnreachable(RemoteError):
    """No connection could be made (after retrying with backoff)."""


class RemoteTimeout(RemoteError):
    """The server accepted the connection but did not answer within the read timeout."""


class RemoteAuthError(RemoteError):
    """401/403: the server refused the API key."""


class RemoteNotFound(RemoteError, ModelNotFound):
    """404: no such model, or the server does not offer this endpoint."""


class RemoteRateLimited(RemoteError):
    """429: too many requests; ``retry_after`` is the server's Retry-After in seconds, when it sent one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RemoteServerError(RemoteError):
    """5xx, or an error the server reported inside a stream."""


class RemoteBadRequest(RemoteError):
    """400/422: the server rejected the request's parameters."""


class RemoteProtocolError(RemoteError):
    """A malformed answer, or a stream that ended before ``[DONE]`` (truncated).

    ``partial`` holds what arrived before the break (a GenerationResult), so nothing received is lost.
    """

    def __init__(self, message: str, partial: object = None) -> None:
        super().__init__(message)
        self.partial = partial


class RemoteDeadline(RemoteProtocolError):
    """The answer did not finish within the request's overall deadline (a server sending a byte now and then
    defeats the read timeout); ``partial`` holds what arrived."""


def first_line(exc: BaseException) -> str:
    """The exception's first non-blank line (a library's message can run to a page), or its type's name."""
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def library_panic(exc: BaseException) -> bool:
    """Whether ``exc`` is a Rust library's panic raised through pyo3 (the tokenizers library on a malformed
    vocabulary or merge list): a BaseException, which ``except Exception`` lets through as a crash."""
    return type(exc).__name__ == "PanicException"
