"""Runs engines: local-or-remote dispatch, the one-device runner, the model pool."""
