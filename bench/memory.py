"""Peak memory of the current process, for the benches (stdlib only: the llama.cpp worker's venv has no torch)."""

from __future__ import annotations


def peak_rss_bytes() -> int:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it does not carry the parent's peak over
    fork + exec); 0 where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
