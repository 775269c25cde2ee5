"""How often a tab repaints tokens streaming in.

Painting competes with decode for the cores: measured in the Prompt tab on 2 cores (Xvfb, software OpenGL, the
embedded model), 30 repaints a second held generation to 54-58 tok/s, 20 to 65-78, 10 to 85-88, against ~100 for
the engine alone (each repaint lays out the text and composes the whole window, ~30% of a core at 30 a second).
So tokens are shown in batches 10 times a second, and the first one at once (``FirstAtOnce``): the wait for the
first token is what a user feels."""

from __future__ import annotations

REPAINT_MS = 100


class FirstAtOnce:
    """Says when a streamed token should be painted at once: the first of each run."""

    def __init__(self) -> None:
        self._waiting = True

    def start(self) -> None:
        self._waiting = True

    def now(self) -> bool:
        """True for the first call after ``start`` (then False until the next start)."""
        first, self._waiting = self._waiting, False
        return first
