"""Playground: the Qt-free core (models, engine, tasks, CLI)."""

__version__ = "0.1.0"
