"""What every fuzz test checks after each input: the CLI ended with exit 0, or with a non-zero exit and exactly one
``error:`` line (never a traceback, never "internal error"), and the sessions database passes SQLite's
``integrity_check`` with every session and run it held before still there, unchanged."""

from __future__ import annotations

import contextlib
import io
import random
import sqlite3
from pathlib import Path

from playground import paths
from playground.cli.main import main
from playground.store.db import open_database
from playground.store.records import Run
from playground.store.repository import SessionStore

# Values that broke parsers before: empty, NaN, huge, negative, control and escape characters, odd Unicode, paths.
NASTY = ["", " ", "0", "-1", "1e309", "nan", "-inf", "inf", "1e-45", str(2**64), str(-(2**63) - 1), "0x10", "true",
         "null", "[]", "{}", "\x00", "\x1b[2J", "\u202e", "\ud800", "😀" * 3, "a" * 5000, "../../etc/passwd",
         "/dev/null", "/", "-", "--", "--json", "=cmd|' /C calc'!A0", "%s%n", "\\", "'\"", "\n\n", "1,2,,3", "0,-1",
         "remote:nope/x", "remote:", "http://127.0.0.1:9/v1", "http://user:pw@h/v1?api_key=sk-1"]


def nasty(rng: random.Random) -> str:
    if rng.random() < 0.2:  # a random mix of bytes decoded as the shell would pass them
        return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 32), rng.randrange(128, 0x3000)]))
                       for _ in range(rng.randrange(1, 40)))
    return rng.choice(NASTY)


def seed_database() -> dict:
    """Two sessions with runs in the current data dir's database; returns their content (see ``content``)."""
    db = open_database()
    store = SessionStore(db)
    a = store.create("kept one")
    store.add_run(a.id, Run(mode="prompt", model_id="m", params={"temperature": 0.0},
                            inputs={"source": "Country: France\nCapital: Paris\n", "prompt": "Country: Italy"},
                            outputs={"completions": [{"text": " Rome", "finish_reason": "stop"}]}))
    b = store.create("kept two")
    store.add_run(b.id, Run(mode="sheet", model_id="m", inputs={"kind": "fill"}, outputs={"cells": []}))
    db.dispose()
    return content()


def content() -> dict:
    """Every session's name and its runs' rows, read with sqlite3 itself (not through the code under test)."""
    with contextlib.closing(sqlite3.connect(paths.data_dir() / "playground.db")) as con:
        tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
        sessions = {row[0]: row[1:] for row in con.execute("select id, name from sessions")}
        runs = sorted(con.execute("select * from runs").fetchall(), key=repr) if "runs" in tables else []
    return {"sessions": sessions, "runs": runs}


def check_database(before: dict, home: Path) -> None:
    db_file = home / "playground.db"
    with contextlib.closing(sqlite3.connect(db_file)) as con:
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    paths.set_data_dir(home)
    try:
        after = content()
    finally:
        paths.set_data_dir(None)
    for sid, row in before["sessions"].items():
        assert after["sessions"].get(sid) == row, f"session {sid} changed or vanished"
    assert set(before["runs"]) <= set(after["runs"]), "a run that was there before changed or vanished"
    assert not [p.name for p in home.glob("playground.db.corrupt*")], "a healthy database was set aside"


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``playground ARGV`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # --help and --version exit through argparse, as in a shell
            code = exc.code if isinstance(exc.code, int) else 1
    paths.set_data_dir(None)  # --data-dir sets it process-wide
    return code, out.getvalue(), err.getvalue()


def check_outcome(argv: list[str], code: int, err: str) -> None:
    where = f"argv={argv!r}"
    assert "Traceback" not in err, f"{where}\n{err[-3000:]}"
    assert code != 70 and "internal error" not in err, f"{where}\n{err[-3000:]}"
    if code != 0:
        lines = [line for line in err.splitlines() if line and not line.startswith("[playground]")]
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{where} exit {code}\n{err[-3000:]}"
