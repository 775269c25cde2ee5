"""What every long job shares across threads: the progress it reports and the flag that stops it."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    """Loading or conversion progress; ``fraction`` is None when the amount of work is unknown."""

    stage: str
    fraction: float | None = None



class Cancel:
    """A cancel flag shared between the UI thread and the engine; checked once per token."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()
