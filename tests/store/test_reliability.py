"""Crash safety and concurrent use, with figures printed (run with -s to see them)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

from playground.store.db import open_database
from playground.store.repository import SessionStore

SAVER = [sys.executable, "-m", "tests.store.saver"]


def integrity(path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def test_kill_9_mid_loop_loses_no_saved_run(tmp_path):
    path = tmp_path / "playground.db"
    db = open_database(path)
    session = SessionStore(db).create("crash").id
    db.dispose()
    child = subprocess.Popen([*SAVER, str(path), str(session), "1000", "crash"], stdout=subprocess.PIPE, text=True)
    saved: list[int] = []
    started = time.monotonic()
    while len(saved) < 300:  # kill it well inside the loop, between or during writes
        line = child.stdout.readline()
        assert line, "the saver stopped early"
        saved.append(int(line))
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    elapsed = time.monotonic() - started
    saved += [int(x) for x in child.stdout.read().split()]  # anything printed before the kill landed

    assert integrity(path) == "ok"
    db = open_database(path)
    present = {r.id for r in SessionStore(db).runs(session)}
    db.dispose()
    assert set(saved) <= present
    print(f"\nkill -9 after {len(saved)} acknowledged saves ({elapsed / len(saved) * 1000:.1f} ms each): "
          f"{len(present)} runs present, integrity ok")


def test_two_processes_writing_at_once_do_not_corrupt_the_db(tmp_path):
    path = tmp_path / "playground.db"
    db = open_database(path)
    session = SessionStore(db).create("shared").id
    db.dispose()
    children = [subprocess.Popen([*SAVER, str(path), str(session), "200", tag], stdout=subprocess.PIPE, text=True)
                for tag in ("a", "b")]
    outputs = [c.communicate(timeout=120)[0] for c in children]
    assert [c.returncode for c in children] == [0, 0]
    acknowledged = {int(x) for out in outputs for x in out.split()}
    assert len(acknowledged) == 400 and integrity(path) == "ok"
    db = open_database(path)
    runs = SessionStore(db).runs(session)
    db.dispose()
    assert {r.id for r in runs} == acknowledged
    assert sum(r.inputs["prompt"].startswith("a-") for r in runs) == 200
