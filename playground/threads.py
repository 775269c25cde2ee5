"""OpenMP's wait policy, set before torch loads (``playground/__init__.py`` calls ``configure`` on import).

torch's CPU kernels and the fused decode step run in OpenMP parallel regions, many per token. libgomp's stock
threads spin ~300k iterations at each barrier before sleeping: on a quiet machine that saves a wake-up, but with
another busy program on the same cores a spinning thread burns the time slice its siblings need and decode fell
20x+ (issue 17). A short spin keeps most of the quiet speed and stays fast on a busy machine (measured by
bench/busy_decode.py). A user's own OMP_WAIT_POLICY / GOMP_SPINCOUNT wins.
"""

from __future__ import annotations

import os

SPIN_COUNT = "300"  # iterations a thread spins at a barrier before it sleeps (libgomp's default: 300000)


def configure() -> None:
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
