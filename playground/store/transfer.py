"""Export a session to JSON (or a folder with its images); import JSON, validating every field (Markdown: markdown.py).

Imported files are untrusted: types, sizes and image paths are checked before anything is written, and
files are only ever written under the data dir.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from playground import paths
from playground.errors import KnownError
from playground.store.records import RUN_STATUSES, Run, SessionInfo
from playground.store.repository import SessionStore

FORMAT = "playground-session"
VERSION = 1
MODES = ("prompt", "layout", "sheet", "image", "compare", "inspect")
MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_STRING = 5 * 1024 * 1024
MAX_RUNS = 100_000
MAX_DEPTH = 32


class ImportRejected(KnownError):
    """The file is not a session export this version can read safely; nothing was imported."""


# -- export --------------------------------------------------------------------------------------------------
def export_dict(store: SessionStore, session_id: int) -> dict[str, Any]:
    info = store.get(session_id)
    return {
        "format": FORMAT, "version": VERSION,
        "session": {"name": info.name, "mode": info.mode, "created_at": info.created_at.isoformat(),
                    "updated_at": info.updated_at.isoformat(), "draft": store.draft(session_id)},
        "runs": [{"mode": r.mode, "model_id": r.model_id, "params": r.params, "inputs": r.inputs,
                  "outputs": r.outputs, "timings": r.timings, "status": r.status, "error": r.error,
                  "created_at": r.created_at.isoformat() if r.created_at else None}
                 for r in store.runs(session_id)],
    }


def export_session(store: SessionStore, session_id: int, out: Path) -> Path:
    """Write ``out`` as JSON; when ``out`` is a folder (existing, or named without .json), write
    ``session.json`` in it and copy the session's images beside it. Return the JSON file written."""
    data = export_dict(store, session_id)
    folder_export = out.is_dir() or out.suffix.lower() != ".json"
    target = out / "session.json" if folder_export else out
    target.parent.mkdir(parents=True, exist_ok=True)
    if folder_export:
        root = paths.data_dir()
        for ref in _image_refs(data):
            src = root / ref["path"]
            if src.is_file():
                dest = out / ref["path"]
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(target)
    return target


# -- import --------------------------------------------------------------------------------------------------
def import_session(store: SessionStore, source: Path) -> SessionInfo:
    """Import a JSON export (a file, or a folder holding session.json and images/); return the new session."""
    file = source / "session.json" if source.is_dir() else source
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise ImportRejected(f"Cannot read {file}: {exc.strerror or exc}") from exc
    if size > MAX_FILE_BYTES:
        raise ImportRejected(f"{file.name} is {size / 1e6:.0f} MB; session files are limited to "
                             f"{MAX_FILE_BYTES / 1e6:.0f} MB")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ImportRejected(f"{file.name} is not valid JSON: {str(exc)[:200]}") from exc
    session, runs = validate(data)
    images = _stage_images(data, file.parent if source.is_dir() else None)
    for src, dest in images:  # content-addressed: copying before the DB commit can orphan nothing harmful
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    return store.create_with_runs(session["name"], session["mode"], session["draft"], runs,
                                  session["created_at"], session["updated_at"])


def validate(data: Any) -> tuple[dict[str, Any], list[Run]]:
    """Check an export's structure; return (session fields, runs) or raise ImportRejected naming the field."""
    _check_sizes(data, "$", 0)
    _expect(isinstance(data, dict), "$", "an object")
    _expect(data.get("format") == FORMAT, "$.format", f"{FORMAT!r}")
    version = data.get("version")
    _expect(isinstance(version, int) and not isinstance(version, bool), "$.version", "an integer")
    if version > VERSION:
        raise ImportRejected(f"This export is format version {version}; this Playground reads up to {VERSION}")
    s = data.get("session")
    _expect(isinstance(s, dict), "$.session", "an object")
    _expect(isinstance(s.get("name"), str), "$.session.name", "a string")
    _expect(s.get("mode", "prompt") in MODES, "$.session.mode", f"one of {', '.join(MODES)}")
    draft = s.get("draft", {})
    _expect(isinstance(draft, dict), "$.session.draft", "an object")
    runs_data = data.get("runs", [])
    _expect(isinstance(runs_data, list), "$.runs", "a list")
    _expect(len(runs_data) <= MAX_RUNS, "$.runs", f"at most {MAX_RUNS} runs")
    runs = [_validate_run(r, f"$.runs[{i}]") for i, r in enumerate(runs_data)]
    times = {key: _parse_time(s.get(key), f"$.session.{key}") for key in ("created_at", "updated_at")}
    return {"name": s["name"], "mode": s.get("mode", "prompt"), "draft": draft, **times}, runs


def _validate_run(r: Any, where: str) -> Run:
    _expect(isinstance(r, dict), where, "an object")
    _expect(r.get("mode") in MODES, f"{where}.mode", f"one of {', '.join(MODES)}")
    _expect(isinstance(r.get("model_id"), str) and len(r["model_id"]) <= 500, f"{where}.model_id",
            "a string of at most 500 characters")
    for key in ("params", "inputs", "outputs", "timings"):
        _expect(isinstance(r.get(key, {}), dict), f"{where}.{key}", "an object")
    _expect(r.get("status") in RUN_STATUSES, f"{where}.status", f"one of {', '.join(RUN_STATUSES)}")
    _expect(r.get("error") is None or isinstance(r["error"], str), f"{where}.error", "a string or null")
    when = _parse_time(r.get("created_at"), f"{where}.created_at")
    for i, ref in enumerate(r.get("outputs", {}).get("images", []) or []):
        _check_image_ref(ref, f"{where}.outputs.images[{i}]")
    return Run(mode=r["mode"], model_id=r["model_id"], params=r.get("params", {}), inputs=r.get("inputs", {}),
               outputs=r.get("outputs", {}), timings=r.get("timings", {}), status=r["status"],
               error=r.get("error"), created_at=when)


def _parse_time(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    _expect(isinstance(value, str), where, "an ISO date string")
    try:
        return datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        raise ImportRejected(f"{where}: expected an ISO date string; nothing was imported") from None


def _check_image_ref(ref: Any, where: str) -> None:
    _expect(isinstance(ref, dict), where, "an object")
    path, digest = ref.get("path"), ref.get("sha256")
    _expect(isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest),
            f"{where}.sha256", "a sha256 hex digest")
    _expect(isinstance(path, str), f"{where}.path", "a relative path")
    p = PurePosixPath(path)
    safe = (not p.is_absolute() and "\\" not in path and ":" not in path and ".." not in p.parts
            and len(p.parts) >= 2 and p.parts[0] == "images")
    _expect(safe, f"{where}.path", "a path inside images/ (no '..', not absolute)")


def _image_refs(data: dict[str, Any]) -> list[dict[str, str]]:
    return [ref for run in data.get("runs", []) for ref in (run.get("outputs", {}).get("images") or [])]


def _stage_images(data: dict[str, Any], folder: Path | None) -> list[tuple[Path, Path]]:
    """(source, destination) pairs for images shipped in a folder export, each verified by its sha256."""
    if folder is None:
        return []
    root = paths.data_dir().resolve()
    pairs = []
    for ref in _image_refs(data):
        src = (folder / ref["path"]).resolve()
        if not src.is_relative_to(folder.resolve()) or not src.is_file():
            continue  # referenced but not shipped: the run keeps its reference
        if hashlib.sha256(src.read_bytes()).hexdigest() != ref["sha256"]:
            raise ImportRejected(f"{ref['path']} does not match its sha256; the export is damaged")
        dest = (root / ref["path"]).resolve()
        if not dest.is_relative_to(root):
            raise ImportRejected(f"{ref['path']} points outside the data folder")
        pairs.append((src, dest))
    return pairs


def _check_sizes(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ImportRejected(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise ImportRejected(f"{where}: a string of {len(value)} characters (the limit is {MAX_STRING})")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_sizes(item, f"{where}.{key}"[:200], depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_sizes(item, f"{where}[{i}]"[:200], depth + 1)


def _expect(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise ImportRejected(f"{where}: expected {what}; nothing was imported")
