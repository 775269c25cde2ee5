"""Small user preferences kept in ``preferences.json`` in the data dir (Qt-free, so the CLI reads them too).

A hand-broken file is set aside and read as empty: a preference is never worth refusing to start over.
"""

from __future__ import annotations

from typing import Any

from playground import jsonfile, paths

FILE = "preferences.json"


def load() -> dict[str, Any]:
    return jsonfile.load_object(paths.data_dir() / FILE)


def get(key: str, default: Any = None) -> Any:
    return load().get(key, default)


def put(key: str, value: Any) -> None:
    """Set one preference (atomic write: a crash leaves the old file whole)."""
    data = load()
    data[key] = value
    jsonfile.save(paths.data_dir() / FILE, data)
