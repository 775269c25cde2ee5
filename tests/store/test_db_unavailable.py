"""A healthy database that cannot be used right now (locked, read-only, a folder, no tables) is said so and left
exactly as it is; only real damage moves a file aside (issue 15, item 11)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from playground import paths
from playground.cli.main import main
from playground.errors import KnownError
from playground.store import db as dbmod
from playground.store.db import open_database
from playground.store.repository import SessionStore

# Holds the file the way another SQLite program can: an exclusive lock that even WAL readers cannot pass.
HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA locking_mode=EXCLUSIVE")
conn.execute("BEGIN EXCLUSIVE")
conn.execute("CREATE TABLE IF NOT EXISTS holder (x)")
print("held", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
conn.close()
"""


@pytest.fixture
def saved_db(data_home):
    path = data_home / "playground.db"
    db = open_database(path)
    SessionStore(db).create("keep me")
    db.dispose()
    return path


def hold(path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def release(holder) -> None:
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait(10)


def names(path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)  # reads even in a read-only folder
    try:
        return [row[0] for row in conn.execute("SELECT name FROM sessions")]
    finally:
        conn.close()


def test_a_locked_database_is_reported_after_the_wait_and_never_moved(saved_db, monkeypatch, capsys):
    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_MS", 400)  # the real wait is 10 s
    holder = hold(saved_db)
    try:
        started = time.monotonic()
        assert main(["sessions", "list"]) == 1
        waited = time.monotonic() - started
    finally:
        release(holder)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "locked by another program" in err and err.count("\n") == 1
    assert waited >= 0.4  # it waited for the lock before giving up
    assert sorted(p.name for p in saved_db.parent.iterdir() if "corrupt" in p.name) == []
    assert names(saved_db) == ["keep me"]
    assert main(["sessions", "list"]) == 0 and "keep me" in capsys.readouterr().out


def test_a_briefly_locked_database_is_simply_waited_for(saved_db, capsys):
    holder = hold(saved_db)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "playground.cli", "sessions", "list"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
    finally:
        release(holder)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "keep me" in out and not [p for p in saved_db.parent.iterdir() if "corrupt" in p.name]


@pytest.fixture
def immutable(data_home):
    """Make the data dir read-only even for root (chattr +i); undone before the test's data dir is checked."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed (a read-only folder cannot be made for root without it)")
    locked = []

    def lock(folder):
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("this file system does not support chattr +i")
        locked.append(folder)

    yield lock
    for folder in locked:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_read_only_data_folder_is_said_in_one_line(saved_db, immutable, capsys):
    immutable(saved_db.parent)
    assert main(["sessions", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "read-only" in err and err.count("\n") == 1
    assert names(saved_db) == ["keep me"]


def test_a_damaged_file_in_a_read_only_folder_is_an_error_not_a_traceback(data_home, immutable, capsys):
    (data_home / "playground.db").write_bytes(b"not a database" * 100)
    immutable(data_home)
    assert main(["sessions", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "could not be set aside" in err and "Traceback" not in err
    assert (data_home / "playground.db").read_bytes() == b"not a database" * 100


def test_a_database_path_that_is_a_folder_is_said(data_home, capsys):
    (data_home / "playground.db").mkdir()
    assert main(["sessions", "list"]) == 1
    assert "is a folder" in capsys.readouterr().err
    assert (data_home / "playground.db").is_dir()


def test_a_database_without_its_tables_is_said_and_left_alone(saved_db, capsys):
    with sqlite3.connect(saved_db) as conn:
        conn.execute("DROP TABLE runs")
    before = saved_db.read_bytes()
    with pytest.raises(KnownError, match="lacks its tables"):
        open_database(saved_db)
    assert main(["sessions", "list"]) == 1
    assert capsys.readouterr().err.startswith("error: ")
    assert saved_db.read_bytes() == before
    saved_db.unlink()  # not a session store any more: nothing for the teardown check to export
    paths.set_data_dir(None)
