"""Export a session to JSON (or a folder with its images); import JSON, validating every field (Markdown: markdown.py).

Imported files are untrusted: every field's type (``run_schema``), sizes and image names are checked before anything
is written; files are only ever written under the data dir, and an existing file is never replaced. What the app
records it can import back: the only size limit is the file's, and export refuses to write a file over it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from playground import paths
from playground.errors import KnownError
from playground.store.records import RUN_STATUSES, Run, SessionInfo
from playground.store.repository import SessionStore
from playground.store.run_schema import DRAFT, RUN_FIELDS, ImportRejected, check

FORMAT = "playground-session"
VERSION = 1
MODES = ("prompt", "layout", "sheet", "image", "compare", "inspect")
# The one size limit (json.loads holds the whole file): export refuses to write more, so every export imports.
MAX_FILE_BYTES = 1024**3
MAX_DEPTH = 32
MAX_IMAGE_BYTES = 256 * 1024**2  # one image file in a folder export
# Stored images are named by their content only: images/<sha256 of the bytes>.<ext>.
IMAGE_NAME = re.compile(r"images/([0-9a-f]{64})\.(png|jpg|jpeg|webp)")
CHUNK = 1024**2

__all__ = ["ImportRejected", "export_dict", "export_session", "import_session", "validate"]


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
    ``session.json`` in it and copy the session's images beside it. Return the JSON file written.
    Raises KnownError when it cannot be written, or would be too large to import back."""
    data = export_dict(store, session_id)
    text = json.dumps(data, ensure_ascii=False, indent=1)
    size = len(text.encode("utf-8"))
    if size > MAX_FILE_BYTES:
        raise KnownError(f"This session is {size / 1e6:,.0f} MB as JSON, over the {MAX_FILE_BYTES / 1e6:,.0f} MB "
                         "an import accepts; nothing was written. Delete or split some of its runs first")
    folder_export = out.is_dir() or out.suffix.lower() != ".json"
    target = out / "session.json" if folder_export else out
    try:
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
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        raise KnownError(f"Cannot write {exc.filename or target}: {exc.strerror or exc}") from exc
    return target


# -- import --------------------------------------------------------------------------------------------------
def import_session(store: SessionStore, source: Path) -> SessionInfo:
    """Import a JSON export (a file, or a folder holding session.json and images/); return the new session."""
    file = source / "session.json" if source.is_dir() else source
    try:
        if not file.is_file():
            raise ImportRejected(f"Cannot read {file}: not a file")
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImportRejected(f"{file.name} is {size / 1e6:,.0f} MB; session files are limited to "
                                 f"{MAX_FILE_BYTES / 1e6:,.0f} MB")
        with open(file, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)  # a file that grows while read is still cut at the limit
    except OSError as exc:
        raise ImportRejected(f"Cannot read {file}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise ImportRejected(f"{file.name} is over the {MAX_FILE_BYTES / 1e6:,.0f} MB limit of session files")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ImportRejected(f"{file.name} is not valid JSON: {str(exc)[:200]}") from exc
    del raw
    session, runs = validate(data)
    try:
        with tempfile.TemporaryDirectory(prefix=".import-", dir=paths.data_dir()) as staging:
            # Images first: named by their content, an image left by an import that fails later harms nothing.
            for tmp, dest in _stage_images(data, file.parent if source.is_dir() else None, Path(staging)):
                _place(tmp, dest)
    except OSError as exc:
        raise ImportRejected(f"Cannot copy the images into {paths.data_dir()}: {exc.strerror or exc}") from exc
    return store.create_with_runs(session["name"], session["mode"], session["draft"], runs,
                                  session["created_at"], session["updated_at"])


def validate(data: Any) -> tuple[dict[str, Any], list[Run]]:
    """Check an export's structure and every field's type; return (session fields, runs) or raise
    ImportRejected naming the field."""
    _check_depth(data, "$", 0)
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
    check(draft, DRAFT, "$.session.draft")
    for i, ref in enumerate(draft.get("image", {}).get("gallery", [])):
        _check_image_ref(ref, f"$.session.draft.image.gallery[{i}]")
    runs_data = data.get("runs", [])
    _expect(isinstance(runs_data, list), "$.runs", "a list")
    runs = [_validate_run(r, f"$.runs[{i}]") for i, r in enumerate(runs_data)]
    times = {key: _parse_time(s.get(key), f"$.session.{key}") for key in ("created_at", "updated_at")}
    return {"name": s["name"], "mode": s.get("mode", "prompt"), "draft": draft, **times}, runs


def _validate_run(r: Any, where: str) -> Run:
    _expect(isinstance(r, dict), where, "an object")
    _expect(r.get("mode") in MODES, f"{where}.mode", f"one of {', '.join(MODES)}")
    _expect(isinstance(r.get("model_id"), str), f"{where}.model_id", "a string")
    for key in ("params", "inputs", "outputs", "timings"):
        _expect(isinstance(r.get(key, {}), dict), f"{where}.{key}", "an object")
        check(r.get(key, {}), RUN_FIELDS[r["mode"]].get(key, {}), f"{where}.{key}")
    _expect(r.get("status") in RUN_STATUSES, f"{where}.status", f"one of {', '.join(RUN_STATUSES)}")
    _expect(r.get("error") is None or isinstance(r["error"], str), f"{where}.error", "a string or null")
    when = _parse_time(r.get("created_at"), f"{where}.created_at")
    images = r.get("outputs", {}).get("images", [])  # any mode's images are files in the data dir
    _expect(isinstance(images, list), f"{where}.outputs.images", "a list")
    for i, ref in enumerate(images):
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
    """An image is ``{"path": "images/<its sha256>.<ext>", "sha256": ...}``: the name can only be its content."""
    _expect(isinstance(ref, dict), where, "an object")
    path, digest = ref.get("path"), ref.get("sha256")
    match = IMAGE_NAME.fullmatch(path) if isinstance(path, str) else None
    _expect(match is not None, f"{where}.path", "images/<sha256 of the file>.png (or .jpg, .webp)")
    _expect(digest == match.group(1), f"{where}.sha256", "the sha256 in the image's file name")


def _image_refs(data: dict[str, Any]) -> list[dict[str, str]]:
    """The well-formed image references of every run (a run recorded before imports were checked may hold
    anything: it is skipped, not a crash)."""
    refs = []
    for run in data.get("runs", []):
        images = run.get("outputs", {}).get("images")
        for ref in images if isinstance(images, list) else []:
            if isinstance(ref, dict) and isinstance(ref.get("path"), str) and IMAGE_NAME.fullmatch(ref["path"]):
                refs.append(ref)
    return refs


def _stage_images(data: dict[str, Any], folder: Path | None, staging: Path) -> list[tuple[Path, Path]]:
    """Copy each image shipped in a folder export into ``staging``, hashing the bytes copied (so the bytes checked
    are the bytes kept); return (staged copy, destination) pairs for the images the data dir lacks."""
    if folder is None:
        return []
    root, inside = paths.data_dir().resolve(), folder.resolve()
    pairs: dict[Path, Path] = {}
    for ref in _image_refs(data):
        dest = root / ref["path"]
        src = (folder / ref["path"]).resolve()
        if dest in pairs or dest.exists() or not src.is_relative_to(inside) or not src.is_file():
            continue  # already here (same name, same content), or referenced but not shipped
        staged = staging / f"{len(pairs)}.img"
        try:
            digest = _copy_hashing(src, staged)
        except OSError as exc:
            raise ImportRejected(f"Cannot read {ref['path']}: {exc.strerror or exc}") from exc
        if digest != ref["sha256"]:
            raise ImportRejected(f"{ref['path']} does not match its sha256; the export is damaged")
        pairs[dest] = staged
    return [(tmp, dest) for dest, tmp in pairs.items()]


def _copy_hashing(src: Path, dest: Path) -> str:
    """Copy ``src`` to ``dest`` in chunks; return the sha256 of what was copied (refusing over MAX_IMAGE_BYTES)."""
    digest = hashlib.sha256()
    copied = 0
    with open(src, "rb") as fin, open(dest, "xb") as fout:
        while chunk := fin.read(CHUNK):
            copied += len(chunk)
            if copied > MAX_IMAGE_BYTES:
                raise ImportRejected(f"{src.name} is over {MAX_IMAGE_BYTES // 1024**2} MB; images in session exports "
                                     "are limited to that")
            digest.update(chunk)
            fout.write(chunk)
    return digest.hexdigest()


def _place(tmp: Path, dest: Path) -> None:
    """Put a verified image in place unless a file of that name exists: a hard link (or, where links are not
    supported, an exclusive create) never replaces one."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(tmp, dest)
    except FileExistsError:
        return
    except OSError:
        with contextlib.suppress(FileExistsError), open(tmp, "rb") as fin, open(dest, "xb") as fout:
            shutil.copyfileobj(fin, fout)


def _check_depth(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ImportRejected(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_depth(item, f"{where}.{key}"[:200], depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_depth(item, f"{where}[{i}]"[:200], depth + 1)


def _expect(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise ImportRejected(f"{where}: expected {what}; nothing was imported")
