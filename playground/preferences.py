"""Small user preferences kept in ``preferences.json`` in the data dir (Qt-free, so the CLI could read them too).

Unreadable or hand-broken files are treated as empty: a preference is never worth refusing to start over.
"""

from __future__ import annotations

import json
import os
from typing import Any

from playground import paths

FILE = "preferences.json"


def load() -> dict[str, Any]:
    try:
        data = json.loads((paths.data_dir() / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def get(key: str, default: Any = None) -> Any:
    return load().get(key, default)


def put(key: str, value: Any) -> None:
    """Set one preference (written to a temp file, then renamed: a crash leaves the old file whole)."""
    data = load()
    data[key] = value
    path = paths.data_dir() / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)
