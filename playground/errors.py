"""Errors the user can act on, kept apart from bugs.

A ``KnownError`` carries one clear sentence for the status bar or stderr; anything else is a bug and is
shown with its traceback.
"""


class KnownError(Exception):
    """A user or environment problem (missing model, bad file, prompt too long) with a readable message."""


class ModelNotFound(KnownError):
    """The model id, folder or file does not resolve to a loadable model."""


class UnsupportedModel(KnownError):
    """The model exists but is of an architecture or format this engine does not load."""


class ContextOverflow(KnownError):
    """The prompt does not fit the model's context window."""


class OutOfMemory(KnownError):
    """The device ran out of memory; memory has been freed."""
