"""What the app records it must import back (issue 15, item 16): every session a test left in its data dir is
exported and validated as an import would, so a record builder and the import schema can never drift apart."""

from __future__ import annotations

import json
from pathlib import Path


def assert_sessions_reimportable(db_file: Path) -> None:
    """Export every live session of ``db_file`` to JSON text and run the importer's checks on it."""
    from playground.store.db import open_database
    from playground.store.repository import SessionStore
    from playground.store.transfer import ImportRejected, export_dict, validate

    db = open_database(db_file)
    try:
        store = SessionStore(db)
        for info in store.list():
            data = json.loads(json.dumps(export_dict(store, info.id), ensure_ascii=False))
            try:
                validate(data)
            except ImportRejected as exc:
                raise AssertionError(f"session {info.name!r} was recorded but would not import back: {exc}") from exc
    finally:
        db.dispose()
