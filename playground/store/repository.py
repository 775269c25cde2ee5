"""Sessions and runs: one short-lived DB session per call, domain records in and out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session as OrmSession

from playground.errors import KnownError
from playground.store.db import Database, unavailable
from playground.store.records import RUN_STATUSES, Run, SessionInfo, search_text_of
from playground.store.schema import RunRow, SessionRow

NAME_LIMIT = 200


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class SessionNotFound(KnownError):
    pass


class SessionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def _tx(self) -> Iterator[OrmSession]:
        """One transaction; a locked or read-only file becomes one sentence (DatabaseUnavailable)."""
        try:
            with self.db.sessionmaker.begin() as s:
                yield s
        except OperationalError as exc:
            raise unavailable(self.db.path, exc.orig or exc) from exc

    @contextmanager
    def _read(self) -> Iterator[OrmSession]:
        try:
            with self.db.sessionmaker() as s:
                yield s
        except OperationalError as exc:
            raise unavailable(self.db.path, exc.orig or exc) from exc

    # -- sessions --------------------------------------------------------------------------------------------
    def create(self, name: str = "Untitled session", mode: str = "prompt",
               draft: dict[str, Any] | None = None) -> SessionInfo:
        now = _now()
        row = SessionRow(name=_clean_name(name), mode=mode, created_at=now, updated_at=now, draft=draft or {})
        with self._tx() as s:
            s.add(row)
            s.flush()
            return _info(row, 0)

    def list(self, search: str = "") -> list[SessionInfo]:
        """Live sessions, most recently updated first; ``search`` matches names, drafts and run contents."""
        counts = (select(RunRow.session_id, func.count(RunRow.id).label("n"))
                  .group_by(RunRow.session_id).subquery())
        query = (select(SessionRow, func.coalesce(counts.c.n, 0))
                 .outerjoin(counts, counts.c.session_id == SessionRow.id)
                 .where(SessionRow.deleted_at.is_(None))
                 .order_by(SessionRow.updated_at.desc(), SessionRow.id.desc()))
        if search.strip():
            pattern = f"%{_escape_like(search.strip())}%"
            in_runs = select(RunRow.session_id).where(RunRow.search_text.ilike(pattern, escape="\\"))
            query = query.where(or_(SessionRow.name.ilike(pattern, escape="\\"),
                                    func.cast(SessionRow.draft, type_=SessionRow.name.type).ilike(
                                        pattern, escape="\\"),
                                    SessionRow.id.in_(in_runs)))
        with self._read() as s:
            return [_info(row, n) for row, n in s.execute(query).all()]

    def get(self, session_id: int) -> SessionInfo:
        with self._read() as s:
            row = self._live(s, session_id)
            n = s.scalar(select(func.count(RunRow.id)).where(RunRow.session_id == session_id)) or 0
            return _info(row, n)

    def find_by_name(self, name: str) -> SessionInfo | None:
        """The live session called ``name`` as it would be stored (spaces collapsed, cut at NAME_LIMIT)."""
        with self._read() as s:
            row = s.scalars(select(SessionRow).where(SessionRow.name == _clean_name(name),
                                                     SessionRow.deleted_at.is_(None))
                            .order_by(SessionRow.updated_at.desc()).limit(1)).first()
            return _info(row, len(row.runs)) if row else None

    def rename(self, session_id: int, name: str) -> SessionInfo:
        with self._tx() as s:
            row = self._live(s, session_id)
            row.name = _clean_name(name)
            row.updated_at = _now()
            return _info(row, len(row.runs))

    def duplicate(self, session_id: int) -> SessionInfo:
        """A copy with every run and the draft, named '… (copy)'."""
        with self._tx() as s:
            src = self._live(s, session_id)
            now = _now()
            copy = SessionRow(name=_clean_name(f"{src.name} (copy)"), mode=src.mode, created_at=now, updated_at=now,
                              draft=dict(src.draft or {}))
            s.add(copy)
            s.flush()
            for run in src.runs:
                s.add(RunRow(session_id=copy.id, created_at=run.created_at, mode=run.mode, model_id=run.model_id,
                             params=run.params, inputs=run.inputs, outputs=run.outputs, timings=run.timings,
                             status=run.status, error=run.error, search_text=run.search_text))
            return _info(copy, len(src.runs))

    def delete(self, session_id: int) -> None:
        """Hide the session; ``restore`` brings it back until ``purge_deleted`` runs."""
        with self._tx() as s:
            self._live(s, session_id).deleted_at = _now()

    def remove(self, session_id: int) -> None:
        """Delete the session and its runs for good (no undo)."""
        with self._tx() as s:
            s.delete(self._live(s, session_id))

    def restore(self, session_id: int) -> None:
        with self._tx() as s:
            row = s.get(SessionRow, session_id)
            if row is None:
                raise SessionNotFound(f"Session {session_id} no longer exists")
            row.deleted_at = None

    def purge_deleted(self, older_than: timedelta = timedelta(0)) -> int:
        """Remove sessions deleted before now - ``older_than`` for good; return how many."""
        cutoff = _now() - older_than
        with self._tx() as s:
            rows = s.scalars(select(SessionRow).where(SessionRow.deleted_at.is_not(None),
                                                      SessionRow.deleted_at <= cutoff)).all()
            for row in rows:
                s.delete(row)
            return len(rows)

    def save_draft(self, session_id: int, mode: str, draft: dict[str, Any]) -> bool:
        """Store one tab's editor contents (called debounced while the user types). A draft equal to the stored one
        changes nothing, not even the session's "updated" time (merely opening a session must not reorder the list).
        Return whether it changed."""
        with self._tx() as s:
            row = self._live(s, session_id)
            merged = dict(row.draft or {})
            draft = json.loads(json.dumps(draft))  # as it will read back (tuples become lists)
            if merged.get(mode) == draft:
                return False
            merged[mode] = draft
            row.draft = merged
            row.updated_at = _now()
            return True

    def draft(self, session_id: int) -> dict[str, Any]:
        with self._read() as s:
            return dict(self._live(s, session_id).draft or {})

    # -- runs ------------------------------------------------------------------------------------------------
    def add_run(self, session_id: int, run: Run) -> Run:
        """Commit a finished, cancelled or failed run; return it with its id. Durable once this returns."""
        now = _now()
        row = _run_row(session_id, run, now)
        with self._tx() as s:
            self._live(s, session_id)
            s.add(row)
            s.execute(update(SessionRow).where(SessionRow.id == session_id).values(updated_at=now))
            s.flush()
            return _run(row)

    def create_with_runs(self, name: str, mode: str, draft: dict[str, Any], runs: list[Run],
                         created_at: datetime | None = None, updated_at: datetime | None = None) -> SessionInfo:
        """A new session holding ``runs``, all in one transaction (an import is whole or absent)."""
        now = _now()
        row = SessionRow(name=_clean_name(name), mode=mode, created_at=created_at or now,
                         updated_at=updated_at or now, draft=draft)
        with self._tx() as s:
            s.add(row)
            s.flush()
            for run in runs:
                s.add(_run_row(row.id, run, now))
            return _info(row, len(runs))

    def runs(self, session_id: int, mode: str | None = None) -> list[Run]:
        """The session's runs, oldest first."""
        query = select(RunRow).where(RunRow.session_id == session_id).order_by(RunRow.id)
        if mode:
            query = query.where(RunRow.mode == mode)
        with self._read() as s:
            return [_run(row) for row in s.scalars(query)]

    def last_run(self, session_id: int, mode: str) -> Run | None:
        query = (select(RunRow).where(RunRow.session_id == session_id, RunRow.mode == mode)
                 .order_by(RunRow.id.desc()).limit(1))
        with self._read() as s:
            row = s.scalars(query).first()
            return _run(row) if row else None

    def get_run(self, run_id: int) -> Run:
        with self._read() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise SessionNotFound(f"Run {run_id} not found")
            return _run(row)

    @staticmethod
    def _live(s: OrmSession, session_id: int) -> SessionRow:
        row = s.get(SessionRow, session_id)
        if row is None or row.deleted_at is not None:
            raise SessionNotFound(f"Session {session_id} not found")
        return row


def _run_row(session_id: int, run: Run, now: datetime) -> RunRow:
    if run.status not in RUN_STATUSES:
        raise ValueError(f"run status must be one of {RUN_STATUSES}, not {run.status!r}")
    return RunRow(session_id=session_id, created_at=run.created_at or now, mode=run.mode, model_id=run.model_id,
                  params=run.params, inputs=run.inputs, outputs=run.outputs, timings=run.timings,
                  status=run.status, error=run.error, search_text=search_text_of(run.inputs, run.outputs))


def _clean_name(name: str) -> str:
    name = " ".join(str(name).split())[:NAME_LIMIT]
    return name or "Untitled session"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _info(row: SessionRow, run_count: int) -> SessionInfo:
    return SessionInfo(id=row.id, name=row.name, mode=row.mode, created_at=row.created_at,
                       updated_at=row.updated_at, run_count=int(run_count))


def _run(row: RunRow) -> Run:
    return Run(id=row.id, session_id=row.session_id, created_at=row.created_at, mode=row.mode,
               model_id=row.model_id, params=dict(row.params or {}), inputs=dict(row.inputs or {}),
               outputs=dict(row.outputs or {}), timings=dict(row.timings or {}), status=row.status,
               error=row.error)
