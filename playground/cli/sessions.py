"""``playground sessions list|export|import`` and recording CLI runs into a named session."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from playground.store.db import open_database
from playground.store.markdown import export_markdown
from playground.store.records import Run
from playground.store.repository import SessionStore
from playground.store.transfer import export_session, import_session


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("sessions", parents=[common], help="list, export and import saved sessions")
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
                print(json.dumps([{"id": s.id, "name": s.name, "mode": s.mode, "runs": s.run_count,
                                   "created_at": s.created_at.isoformat(), "updated_at": s.updated_at.isoformat()}
                                  for s in sessions], ensure_ascii=False))
            for s in [] if args.json else sessions:
                print(f"{s.id:5}  {s.updated_at:%Y-%m-%d %H:%M}  {s.run_count:4} runs  {s.name}")
        elif args.sessions_command == "export":
            if args.out.suffix.lower() == ".md":
                args.out.write_text(export_markdown(store, args.id), encoding="utf-8")
                written = args.out
            else:
                written = export_session(store, args.id, args.out)
            print(f"exported session {args.id} to {written}")
        else:
            info = import_session(store, args.file)
            print(f"imported {info.run_count} runs as session {info.id} ({info.name})")
        return 0
    finally:
        store.db.dispose()


def record(session_name: str, run_record: Run) -> int:
    """Save ``run_record`` in the session called ``session_name`` (created if missing); return its id."""
    store = open_store()
    try:
        info = store.find_by_name(session_name) or store.create(session_name, run_record.mode)
        store.add_run(info.id, run_record)
        return info.id
    finally:
        store.db.dispose()
