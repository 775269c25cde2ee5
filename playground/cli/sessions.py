"""``playground sessions list|export|import|delete`` and recording CLI runs into a named session."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playground.cli.output import printable, to_json
from playground.store.db import open_database
from playground.store.markdown import write_markdown
from playground.store.records import Run
from playground.store.repository import SessionStore
from playground.store.transfer import export_session, import_session


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("sessions", parents=[common], help="list, export, import and delete saved sessions")
    ssub = s.add_subparsers(dest="sessions_command", required=True)
    ls = ssub.add_parser("list", parents=[common], help="sessions, most recently used first")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--search", default="", help="only sessions whose name or contents contain this text")
    ex = ssub.add_parser("export", parents=[common], help="write a session as JSON, Markdown (.md) or a folder")
    ex.add_argument("id", type=int)
    ex.add_argument("--out", type=Path, required=True,
                    help="FILE.json, FILE.md (every run as Markdown), or a folder (JSON + images)")
    im = ssub.add_parser("import", parents=[common], help="import a JSON export (file or folder)")
    im.add_argument("file", type=Path)
    rm = ssub.add_parser("delete", parents=[common], help="delete a session and its runs for good")
    rm.add_argument("id", type=int)


def open_store() -> SessionStore:
    db = open_database()
    for notice in db.notices:
        print(f"[playground] {notice}", file=sys.stderr)
    return SessionStore(db)


def run(args: argparse.Namespace) -> int:
    store = open_store()
    try:
        if args.sessions_command == "list":
            sessions = store.list(args.search)
            if args.json:
                print(to_json([{"id": s.id, "name": s.name, "mode": s.mode, "runs": s.run_count,
                                "created_at": s.created_at.isoformat(), "updated_at": s.updated_at.isoformat()}
                               for s in sessions]))
            for s in [] if args.json else sessions:  # names may come from imported files: never raw escapes
                print(f"{s.id:5}  {s.updated_at:%Y-%m-%d %H:%M}  {s.run_count:4} runs  {printable(s.name)}")
        elif args.sessions_command == "export":
            if args.out.suffix.lower() == ".md":
                written = write_markdown(store, args.id, args.out)
            else:
                written = export_session(store, args.id, args.out)
            print(f"exported session {args.id} to {printable(written)}")
        elif args.sessions_command == "delete":
            name = store.get(args.id).name
            store.remove(args.id)
            print(f"deleted session {args.id} ({printable(name)})")
        else:
            info = import_session(store, args.file)
            print(f"imported {info.run_count} runs as session {info.id} ({printable(info.name)})")
        return 0
    finally:
        store.db.dispose()


def session_name(text: str) -> str:
    """argparse type of ``--session NAME``: a blank name is refused before anything runs (it would record
    nothing anyone could find)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give the session a name (it is created if missing)")
    return text


def record(session_name: str, run_record: Run) -> int:
    """Save ``run_record`` in the session called ``session_name`` (created if missing); return its id."""
    store = open_store()
    try:
        info = store.find_by_name(session_name) or store.create(session_name, run_record.mode)
        store.add_run(info.id, run_record)
        return info.id
    finally:
        store.db.dispose()
