"""Playground: the Qt-free core (domain, models, store, engine, remote, runtime, tasks, CLI)."""

from playground import threads as _threads

_threads.configure()  # before anything imports torch: OpenMP reads its environment once

__version__ = "0.1.0"
