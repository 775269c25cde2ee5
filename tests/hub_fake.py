"""A stand-in for the Hugging Face Hub (none is reachable in tests): a local GGUF repository whose files
``snapshot_download`` copies into a real Hugging Face cache layout, as the Hub client does (only what the patterns
ask for), and whose file list ``HfApi.list_repo_files`` gives."""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path

import pytest

from tests.gguf_files import tiny_model, write_gguf

REPO = "someone/Tiny-GGUF"
REVISION = "89abcdef0123456789abcdef0123456789abcdef"


def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[list[str]]]:
    """The repository on the "Hub" (two quantizations, a split F16 in its folder, a README); returns the cache and
    the pattern lists each fetch asked for."""
    import huggingface_hub

    remote = tmp_path / "remote"
    remote.mkdir()
    model = tiny_model("llama")
    for quant in ("Q4_0", "Q8_0"):
        write_gguf(model, remote / f"Tiny-{quant}.gguf", quant=quant)
    (remote / "F16").mkdir()  # a big model's parts, in a folder named after their quantization
    write_gguf(model, remote / "F16" / "Tiny-F16.gguf", quant="F16", split_max_tensors=10)
    (remote / "F16" / "Tiny-F16.gguf").unlink(missing_ok=True)
    (remote / "README.md").write_text("a model card")
    cache = tmp_path / "hub-cache"
    asked: list[list[str]] = []

    def snapshot_download(repo_id: str, allow_patterns: list[str] | None = None, **_: object) -> str:
        if repo_id != REPO:
            raise huggingface_hub.errors.LocalEntryNotFoundError(f"{repo_id}: not cached, and no connection")
        asked.append(list(allow_patterns or []))
        snapshot = cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / REVISION
        snapshot.mkdir(parents=True, exist_ok=True)
        for f in remote.rglob("*"):
            name = f.relative_to(remote).as_posix()
            if f.is_file() and (not allow_patterns or any(fnmatch.fnmatchcase(name, p) for p in allow_patterns)):
                (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, snapshot / name)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    def list_repo_files(self: object, repo_id: str, **_: object) -> list[str]:
        if repo_id != REPO:
            raise OSError(f"{repo_id}: no connection")
        return sorted(f.relative_to(remote).as_posix() for f in remote.rglob("*") if f.is_file())

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", list_repo_files)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)  # (the suite runs offline; this Hub answers)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache, asked
