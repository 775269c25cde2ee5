"""Open the SQLite file safely: PRAGMAs, a corrupt file moved aside, migrations after a backup copy."""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from playground import paths
from playground.errors import KnownError

if TYPE_CHECKING:
    from alembic.config import Config

DB_NAME = "playground.db"
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 10_000
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD_REVISION = "0002"  # the newest migration; tests/store check it matches alembic's head


class NewerDatabase(KnownError):
    """The file was written by a newer Playground; it is left untouched."""


class DatabaseUnavailable(KnownError):
    """The file is fine but cannot be used now (locked by another program, read-only, not a file); left untouched."""


# SQLite's primary result codes (https://sqlite.org/rescode.html): only CORRUPT and NOTADB mean a damaged file.
SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR = 3, 5, 6, 8, 10
SQLITE_CORRUPT, SQLITE_CANTOPEN, SQLITE_NOTADB = 11, 14, 26


@dataclass
class Database:
    path: Path
    engine: Engine
    sessionmaker: sessionmaker
    # Things the user should be told once (a corrupt file moved aside, a migration done).
    notices: list[str] = field(default_factory=list)

    def dispose(self) -> None:
        self.engine.dispose()


def default_path() -> Path:
    return paths.data_dir() / DB_NAME


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-%f")


def _alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _make_engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DB-API connection
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer; a crash loses no commit
        cur.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # a second app instance waits, not fails
        cur.close()

    return engine


def unavailable(path: Path, exc: BaseException) -> DatabaseUnavailable:
    """The user's sentence for an SQLite error that is not damage: locked, read-only, cannot be opened."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in (SQLITE_BUSY, SQLITE_LOCKED) or "locked" in str(exc):
        return DatabaseUnavailable(f"The sessions database {path} is locked by another program (waited "
                                   f"{BUSY_TIMEOUT_MS // 1000} s); close it and try again. Nothing was changed")
    readonly = primary in (SQLITE_READONLY, SQLITE_PERM) or "readonly" in str(exc)
    why = _not_writable(path.parent) if readonly or primary == SQLITE_CANTOPEN else None
    if readonly or why:
        return DatabaseUnavailable(f"The sessions database {path} is read-only here ({why or exc}): SQLite needs "
                                   "to write beside it. Make its folder writable, or choose another data folder "
                                   "(--data-dir)")
    return DatabaseUnavailable(f"The sessions database {path} cannot be opened ({exc}); it was left as it is")


def _not_writable(folder: Path) -> str | None:
    """Why no file can be created in ``folder`` (tried, since permission bits say nothing to root), or None."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def _looks_corrupt(path: Path) -> str | None:
    """Why ``path`` is a damaged SQLite file, or None if it is healthy (or does not exist yet).

    Only damage counts (not a database, or an integrity check that fails): a file that is merely locked by
    another program, read-only or unreadable raises DatabaseUnavailable and is never moved aside.
    """
    if path.is_dir():
        raise DatabaseUnavailable(f"The sessions database {path} is a folder, not a file; move it away or choose "
                                  "another data folder (--data-dir)")
    try:
        if not path.exists() or path.stat().st_size == 0:
            return None
        with open(path, "rb") as f:
            if f.read(16) != SQLITE_MAGIC:
                return "it is not an SQLite database"
    except OSError as exc:
        raise DatabaseUnavailable(f"The sessions database {path} cannot be read ({exc.strerror or exc})") from exc
    try:
        row = _read_only_row(path, "PRAGMA quick_check")
    except sqlite3.DatabaseError as exc:
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB):
            return f"SQLite cannot read it ({exc})"
        raise unavailable(path, exc) from exc
    if not row or row[0] != "ok":
        return f"its integrity check failed ({row[0] if row else 'no answer'})"
    return None


def _move_aside(path: Path, suffix: str) -> Path:
    """Rename the file (and its WAL/SHM companions) out of the way; nothing is deleted."""
    target = path.with_name(f"{path.name}.{suffix}-{_stamp()}")
    try:
        path.rename(target)
    except OSError as exc:
        raise DatabaseUnavailable(f"The sessions database {path} is damaged and could not be set aside "
                                  f"({exc.strerror or exc}); move it away by hand. It was left as it is") from exc
    for companion in ("-wal", "-shm"):
        extra = path.with_name(path.name + companion)
        if extra.exists():
            extra.rename(target.with_name(target.name + companion))
    return target


def _backup(path: Path, revision: str) -> Path:
    """A consistent copy through SQLite's backup API (a plain copy could miss WAL contents)."""
    target = path.with_name(f"{path.name}.backup-{revision}-{_stamp()}")
    src = sqlite3.connect(str(path))
    dst = sqlite3.connect(str(target))
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return target


def _read_only_row(path: Path, sql: str) -> tuple | None:
    """The first row of ``sql`` on the file opened read-only (plain sqlite3, before SQLAlchemy touches it)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        return conn.execute(sql).fetchone()
    finally:
        conn.close()


def _current_revision(path: Path) -> str | None:
    """The schema revision stamped in the file, read with plain sqlite3; None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        row = _read_only_row(path, "SELECT version_num FROM alembic_version")
    except sqlite3.Error:
        return None
    return row[0] if row else None


def _probe(path: Path, engine: Engine) -> None:
    """Connect once (the PRAGMAs run, WAL files appear) and read both tables: a locked, read-only or table-less
    file is said here, in one sentence, rather than as a traceback at the first query."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT count(*) FROM sessions").fetchone()
            conn.exec_driver_sql("SELECT count(*) FROM runs").fetchone()
    except OperationalError as exc:
        engine.dispose()
        if "no such table" in str(exc.orig):
            raise DatabaseUnavailable(f"{path} is marked as a Playground database but lacks its tables "
                                      f"({exc.orig}); move it away to start a fresh one. It was left as it is"
                                      ) from exc
        raise unavailable(path, exc.orig or exc) from exc


def open_database(path: Path | None = None) -> Database:
    """Open (creating or migrating) the sessions database at ``path``; return it ready for repositories.

    A damaged file (not SQLite, or failing its integrity check) is moved aside and a fresh one created, with a
    notice. A database from a newer Playground raises NewerDatabase, one that is locked, read-only or lacks its
    tables DatabaseUnavailable; neither is modified.
    """
    path = path or default_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnavailable(f"Cannot create {path.parent} ({exc.strerror or exc})") from exc
    notices: list[str] = []
    reason = _looks_corrupt(path)
    if reason:
        kept = _move_aside(path, "corrupt")
        notices.append(f"The sessions database could not be opened because {reason}. It was kept as "
                       f"{kept.name} and a new, empty database was started.")
    engine = _make_engine(path)
    if _current_revision(path) == HEAD_REVISION:
        # Up to date, the common case: alembic (~0.15 s of imports) is not needed before the window shows.
        _probe(path, engine)
        return Database(path=path, engine=engine, sessionmaker=sessionmaker(engine, expire_on_commit=False),
                        notices=notices)
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = _alembic_config()
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        if current is not None and current not in {rev.revision for rev in script.walk_revisions()}:
            raise NewerDatabase(f"{path.name} was written by a newer version of Playground (schema {current}); "
                                "update Playground to open it. The file was not changed.")
        if current != head:
            if current is not None:
                backup = _backup(path, current)
                notices.append(f"Upgraded the sessions database (backup kept as {backup.name}).")
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        _probe(path, engine)
    except OperationalError as exc:
        engine.dispose()
        raise unavailable(path, exc.orig or exc) from exc
    except BaseException:
        engine.dispose()
        raise
    return Database(path=path, engine=engine, sessionmaker=sessionmaker(engine, expire_on_commit=False),
                    notices=notices)
