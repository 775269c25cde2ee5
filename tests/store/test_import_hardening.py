"""Imports from outside: images named by content and never overwritten, whatever the app records imports back,
reads bounded (issue 15, items 13, 16 and 23)."""

from __future__ import annotations

import hashlib
import json
import resource
import subprocess
import sys

import pytest

from playground import paths
from playground.store import transfer
from playground.store.records import Run
from playground.store.transfer import ImportRejected, export_dict, export_session, import_session


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def image_export(folder, refs: list[dict], files: dict[str, bytes]) -> None:
    """A folder export shaped by hand (as an attacker would), holding ``files`` under it."""
    data = {"format": "playground-session", "version": 1, "session": {"name": "crafted", "mode": "image"},
            "runs": [{"mode": "image", "model_id": "demo", "status": "done", "outputs": {"images": refs}}]}
    folder.mkdir()
    (folder / "session.json").write_text(json.dumps(data))
    for rel, content in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(content)


@pytest.fixture
def existing_image():
    """An image another session already uses, stored under its content hash."""
    content = b"\x89PNG the image another session shows"
    rel = f"images/{digest(content)}.png"
    (paths.data_dir() / "images").mkdir()
    (paths.data_dir() / rel).write_bytes(content)
    return rel, content


def test_a_crafted_folder_cannot_replace_another_sessions_image(store, tmp_path, existing_image):
    rel, content = existing_image
    evil = b"\x89PNG other bytes shipped under the existing name"
    # The name of the existing image, with the sha256 of the bytes actually shipped: once accepted and copied over.
    image_export(tmp_path / "evil", [{"path": rel, "sha256": digest(evil)}], {rel: evil})
    with pytest.raises(ImportRejected, match="sha256"):
        import_session(store, tmp_path / "evil")
    assert (paths.data_dir() / rel).read_bytes() == content
    assert store.list() == []


def test_an_image_is_stored_under_its_content_hash_and_an_existing_file_is_kept(store, tmp_path, existing_image):
    rel, content = existing_image
    new = b"\x89PNG a new image"
    new_rel = f"images/{digest(new)}.png"
    image_export(tmp_path / "ok", [{"path": rel, "sha256": digest(content)}, {"path": new_rel, "sha256": digest(new)}],
                 {rel: content, new_rel: new})
    before = (paths.data_dir() / rel).stat().st_ino
    info = import_session(store, tmp_path / "ok")
    assert (paths.data_dir() / new_rel).read_bytes() == new
    assert (paths.data_dir() / rel).stat().st_ino == before  # the same file, not replaced by a copy
    assert [r["path"] for r in store.runs(info.id)[0].outputs["images"]] == [rel, new_rel]
    assert not [p for p in paths.data_dir().iterdir() if p.name.startswith(".import-")]  # staging cleaned up


def test_an_oversized_image_is_refused_without_reading_it_whole(store, tmp_path, monkeypatch):
    big = b"\x89PNG" + b"x" * 5000
    rel = f"images/{digest(big)}.png"
    image_export(tmp_path / "big", [{"path": rel, "sha256": digest(big)}], {rel: big})
    monkeypatch.setattr(transfer, "MAX_IMAGE_BYTES", 4096)
    monkeypatch.setattr(transfer, "CHUNK", 1024)
    with pytest.raises(ImportRejected, match="limited"):
        import_session(store, tmp_path / "big")
    assert not (paths.data_dir() / rel).exists() and store.list() == []


def test_what_the_app_records_it_imports_back(store, tmp_path):
    """A 6.5 M-character prompt the app recorded itself (a failed, too-long run) exports and imports back."""
    prompt = "Country: Italy\nCapital: Rome\n" * 230_000  # ~6.5 M characters
    s = store.create("Long prompt")
    store.save_draft(s.id, "prompt", {"source": "", "prompt": prompt})
    store.add_run(s.id, Run(mode="prompt", model_id="smollm2", inputs={"source": "", "prompt": prompt},
                            status="failed", error="The prompt does not fit the model's context"))
    out = export_session(store, s.id, tmp_path / "long.json")
    imported = import_session(store, out)
    assert export_dict(store, imported.id)["runs"] == export_dict(store, s.id)["runs"]
    assert store.runs(imported.id)[0].inputs["prompt"] == prompt


def test_export_refuses_a_file_import_could_not_read(store, tmp_path, monkeypatch):
    s = store.create("Too big")
    store.add_run(s.id, Run(mode="prompt", model_id="m", inputs={"prompt": "x" * 5000}))
    monkeypatch.setattr(transfer, "MAX_FILE_BYTES", 4000)
    with pytest.raises(transfer.KnownError, match="over the"):
        export_session(store, s.id, tmp_path / "big.json")
    assert not (tmp_path / "big.json").exists()


def test_a_device_or_endless_file_is_not_read_whole():
    def cap_memory() -> None:  # before the fix the read only ended when memory did
        resource.setrlimit(resource.RLIMIT_AS, (4 * 1024**3, 4 * 1024**3))

    proc = subprocess.run([sys.executable, "-m", "playground.cli", "sessions", "import", "/dev/zero"],
                          capture_output=True, text=True, timeout=120, preexec_fn=cap_memory)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "not a file" in proc.stderr
