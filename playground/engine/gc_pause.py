"""Tokenizer builds with Python's cycle collector paused.

Building a tokenizer makes hundreds of thousands of long-lived objects (Gemma-3's 262k tokens, 515k merge pairs,
6k added tokens). Each allocation burst set off full collections, and with torch and transformers imported a full
collection walks ~0.5M objects: ~0.1 s each, 0.1-0.25 s of a Gemma-3-270M first load (measured). None of those
objects is cyclic garbage. Only the tokenizer's build is covered, not a whole load: a long load (quantizing a large
model) should not keep cycles that hold tensors alive.
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
