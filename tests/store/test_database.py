"""The database file: PRAGMAs, corrupt files moved aside, migrations with backups, newer schemas refused."""

from __future__ import annotations

import sqlite3

import pytest
from alembic import command
from sqlalchemy import text

from playground.store import db as dbmod
from playground.store.db import NewerDatabase, open_database
from playground.store.repository import SessionStore


def test_pragmas_are_on(tmp_path):
    db = open_database(tmp_path / "p.db")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10_000
    db.dispose()


@pytest.mark.parametrize("content", [b"this is not a database at all" * 100,
                                     b"SQLite format 3\x00" + b"\xff" * 4000])
def test_a_corrupt_file_is_moved_aside_and_a_fresh_db_starts(tmp_path, content):
    path = tmp_path / "playground.db"
    path.write_bytes(content)
    db = open_database(path)
    kept = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(kept) == 1 and kept[0].read_bytes() == content  # kept, never deleted
    assert "could not be opened" in db.notices[0] and kept[0].name in db.notices[0]
    store = SessionStore(db)
    assert store.create("fresh").id == 1 and [s.name for s in store.list()] == ["fresh"]
    db.dispose()


def test_an_older_schema_is_migrated_in_place_after_a_backup(tmp_path):
    path = tmp_path / "playground.db"
    engine = dbmod._make_engine(path)
    cfg = dbmod._alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(text("INSERT INTO sessions (id, name, mode, created_at, updated_at) "
                          "VALUES (1, 'Old', 'prompt', '2026-01-01 10:00:00', '2026-01-01 10:00:00')"))
        conn.execute(text("INSERT INTO runs (session_id, created_at, mode, model_id, params, inputs, outputs, "
                          "timings, status) VALUES (1, '2026-01-01 10:00:00', 'prompt', 'm', '{}', "
                          "'{\"prompt\": \"Country: Peru\"}', '{\"completions\": [{\"text\": \" Lima\"}]}', "
                          "'{}', 'done')"))
    engine.dispose()

    db = open_database(path)
    backups = [p for p in tmp_path.iterdir() if ".backup-0001-" in p.name]
    assert len(backups) == 1 and "Upgraded" in db.notices[0]
    with sqlite3.connect(backups[0]) as conn:  # the backup is the old schema, intact
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0001",)
    store = SessionStore(db)
    assert [s.name for s in store.list("lima")] == ["Old"]  # search text back-filled for old runs
    assert store.runs(1)[0].inputs == {"prompt": "Country: Peru"}
    store.save_draft(1, "prompt", {"prompt": "new column works"})
    db.dispose()


def test_a_newer_schema_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "playground.db"
    open_database(path).dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(NewerDatabase, match="newer version"):
        open_database(path)
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if ".backup-" in p.name or ".corrupt-" in p.name]


def test_head_revision_constant_matches_the_newest_migration(tmp_path):
    """open_database skips alembic when the file is at HEAD_REVISION; that constant must be alembic's head."""
    from alembic.script import ScriptDirectory

    from playground.store import db

    assert ScriptDirectory.from_config(db._alembic_config()).get_current_head() == db.HEAD_REVISION
    database = db.open_database(tmp_path / "p.db")
    database.dispose()
    assert db._current_revision(tmp_path / "p.db") == db.HEAD_REVISION
