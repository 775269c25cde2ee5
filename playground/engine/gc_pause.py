"""Model loads with Python's cycle collector paused.

A load builds hundreds of thousands of long-lived objects (a tokenizer's vocabulary and merges: Gemma's 262k tokens
and 515k merge pairs). Each allocation burst set off full collections, and with torch and transformers imported a
full collection walks ~0.5M objects: ~0.1 s each, 0.1-0.25 s of a Gemma-3-270M first load (measured). Nothing a
load builds is cyclic garbage worth collecting mid-load; collection resumes after it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """The block (or, as a decorator, the function) runs with the cycle collector off; its state is restored."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
