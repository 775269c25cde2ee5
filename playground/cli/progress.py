"""Progress of long steps (downloads, conversion, loading) on stderr, for every command."""

from __future__ import annotations

import sys

from playground.domain.jobs import ProgressEvent

_last_progress: tuple[str, int] = ("", -1)


def progress(event: ProgressEvent) -> None:
    """Progress on stderr: one line per stage and per 25% step, so logs stay short."""
    global _last_progress
    step = -1 if event.fraction is None else int(event.fraction * 4)
    if (event.stage, step) == _last_progress:
        return
    _last_progress = (event.stage, step)
    pct = f" {event.fraction:4.0%}" if event.fraction is not None else ""
    print(f"[playground]{pct} {event.stage}", file=sys.stderr, flush=True)
