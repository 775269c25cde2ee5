"""Playground: the Qt-free core (domain, models, store, engine, remote, runtime, tasks, CLI)."""

__version__ = "0.1.0"
