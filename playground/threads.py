"""OpenMP's wait policy, set before torch loads (``playground/__init__.py`` calls ``configure`` on import), and
the thread governor that gives up a core while another program keeps one busy.

torch's CPU kernels and the fused decode step run in OpenMP parallel regions, many per token. libgomp's stock
threads spin ~300k iterations at each barrier before sleeping; with another busy program on the same cores a
spinning thread burns the time slice its siblings need, and decode fell 20x+ (issue 17). Two measures:

- a shorter spin (``SPIN_COUNT``): long enough that a quiet machine keeps its full speed (the gaps between the
  step's parallel regions are a few microseconds), short enough that a waiting thread soon sleeps;
- ``Governor``: during generation it samples how much CPU other processes use (``/proc/stat`` minus this
  process's own time) and runs on the cores they leave free (at least one): a decode step on one uncontended
  thread beats two threads that wait on each other behind a competitor. Measured by bench/busy_decode.py.

A user's own OMP_WAIT_POLICY / GOMP_SPINCOUNT wins; ``PLAYGROUND_THREAD_GOVERNOR=0`` turns the governor off.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

SPIN_COUNT = "3000"  # iterations a thread spins at a barrier before it sleeps (libgomp's default: 300000)
ENV_GOVERNOR = "PLAYGROUND_THREAD_GOVERNOR"


def configure() -> None:
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT


def read_proc_stat() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot; None where /proc/stat is missing."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = sum(fields[:8])  # guest time is already inside user
    idle = fields[3] + fields[4]  # idle + iowait
    return (total - idle) / tick, total / tick


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


class Governor:
    """Call ``tick()`` once per decode step: every ``period`` seconds it re-reads the machine's load and sets the
    thread count (``set_threads``) to the cores other processes leave free, between 1 and ``max_threads``."""

    def __init__(self, max_threads: int, set_threads: Callable[[int], None], get_threads: Callable[[], int],
                 cores: int | None = None, period: float = 0.25,
                 stat: Callable[[], tuple[float, float] | None] = read_proc_stat,
                 own: Callable[[], float] = own_cpu_seconds,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_threads = max(1, max_threads)
        self.threads = self.max_threads
        self.cores = cores or _available_cores()
        self._set, self._get = set_threads, get_threads
        self._stat, self._own, self._clock, self.period = stat, own, clock, period
        self._last: tuple[float, float, float] | None = None  # (time, machine busy s, own s)
        self._next = 0.0
        self.others = 0.0  # cores other processes used in the last period

    def tick(self) -> None:
        now = self._clock()
        if now < self._next:
            return
        self._next = now + self.period
        stat = self._stat()
        if stat is None:
            return
        sample = (now, stat[0], self._own())
        last, self._last = self._last, sample
        if last is None or sample[0] - last[0] < self.period / 2 or sample[0] - last[0] > 4 * self.period:
            return  # the first reading, or one after an idle spell: what others did while we were idle says little
        wall = sample[0] - last[0]
        self.others = max(0.0, ((sample[1] - last[1]) - (sample[2] - last[2])) / wall)
        # Hysteresis: a core counts as taken from 0.6 of one busy (a competitor that also waits on I/O still
        # steals most of a time slice), and is given back below 0.3.
        free = self.cores - self.others
        want = self.threads
        if free < self.threads - 0.6:
            want = int(free + 0.4)
        elif free > self.threads + 0.7:
            want = int(free + 0.3)
        self.threads = max(1, min(self.max_threads, want))
        if self._get() != self.threads:  # also when another thread than last time runs the model
            self._set(self.threads)


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def torch_governor() -> Governor | None:
    """A governor over torch's thread count (the calling thread's: OpenMP keeps it per thread); None when turned
    off or where there is no /proc/stat to read."""
    if os.environ.get(ENV_GOVERNOR, "1") == "0" or read_proc_stat() is None:
        return None
    import torch

    return Governor(torch.get_num_threads(), torch.set_num_threads, torch.get_num_threads)
