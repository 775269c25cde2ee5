"""Refuse a load that cannot fit before it starts, instead of letting the system kill the app half-way through it
(an anonymous allocation past the machine's memory is not a Python ``MemoryError`` on Linux: the OOM killer ends
the process, and the session's unsaved work with it)."""

from __future__ import annotations

import sys

from playground.errors import OutOfMemory
from playground.sysinfo import human_bytes


def available_bytes() -> int | None:
    """Memory the system can still hand out without swapping (Linux's MemAvailable; psutil's figure elsewhere where
    it is installed); None where it cannot be told."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/meminfo", encoding="ascii") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


# bytes a weight takes once loaded, per precision the runners hold it at (int4: 4 bits and an fp16 scale per 32)
BYTES_PER_WEIGHT = {"fp32": 4.0, "bf16": 2.0, "int8": 34 / 32, "int4": 18 / 32, "int4-a8": 18 / 32}


def require(nbytes: int, what: str) -> None:
    """``OutOfMemory`` when loading ``what`` needs more than ``nbytes`` the system has free (unknown: no check)."""
    free = available_bytes()
    if free is not None and nbytes > free:
        raise OutOfMemory(f"{what} needs about {human_bytes(nbytes)} of memory once loaded and this machine has "
                          f"{human_bytes(free)} free: close other programs, or pick a smaller model or quantization")
