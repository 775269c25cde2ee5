"""Models pulled with Ollama run here without its server: read from its store (manifests naming blobs), listed as
``ollama:NAME:TAG``, loaded straight from the blob on the fast path."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from playground.errors import ModelNotFound
from playground.models import ollama_store
from playground.models.registry import Registry
from tests.gguf_files import tiny_model, write_gguf


def _pull(store: Path, registry: str, namespace: str, name: str, tag: str, gguf: Path | None) -> None:
    """What ``ollama pull`` leaves: the GGUF as blobs/sha256-<hex> and a manifest naming it (None: the blob is not
    there yet, a pull that has not finished)."""
    data = gguf.read_bytes() if gguf else b"never written"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if gguf:
        (store / "blobs").mkdir(parents=True, exist_ok=True)
        (store / "blobs" / digest.replace(":", "-")).write_bytes(data)
    manifest = store / "manifests" / registry / namespace / name / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"schemaVersion": 2, "layers": [
        {"mediaType": "application/vnd.ollama.image.model", "digest": digest, "size": len(data)},
        {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "0" * 64, "size": 10}]}))


def test_models_pulled_with_ollama_are_listed_and_run_from_its_store(tmp_path, monkeypatch):
    from playground.runtime.dispatch import load_model

    store = tmp_path / "ollama-models"
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    model = tiny_model("llama")
    gguf = write_gguf(model, tmp_path / "tiny.gguf", quant="Q4_0")
    _pull(store, "registry.ollama.ai", "library", "tiny", "latest", gguf)
    _pull(store, "hf.co", "someone", "Tiny-GGUF", "Q4_0", gguf)
    _pull(store, "registry.ollama.ai", "library", "half", "7b", None)
    (store / "manifests" / "registry.ollama.ai" / "library" / "broken").mkdir()
    (store / "manifests" / "registry.ollama.ai" / "library" / "broken" / "latest").write_text("{not json")
    listed = {m.id: m for m in Registry().list() if m.id.startswith("ollama:")}
    assert sorted(listed) == ["ollama:hf.co/someone/Tiny-GGUF:Q4_0", "ollama:tiny:latest"]
    assert listed["ollama:tiny:latest"].source == "ollama"
    assert listed["ollama:tiny:latest"].size_bytes == gguf.stat().st_size
    reference = load_model(str(gguf), device="cpu").fast.prefill(0, [1, 5, 9, 2], reuse=False)
    for model_id in ("ollama:tiny", "ollama:hf.co/someone/Tiny-GGUF:Q4_0"):  # (no tag: latest)
        tm = load_model(model_id, device="cpu")
        assert tm.fast is not None and torch.equal(tm.fast.prefill(0, [1, 5, 9, 2], reuse=False), reference)
    with pytest.raises(ModelNotFound, match=r"ollama:half:7b is not among the models pulled with Ollama .*"
                                            r"`ollama pull half:7b` fetches it"):
        load_model("ollama:half:7b", device="cpu")


def test_a_pulled_model_whose_blob_cannot_be_looked_at_is_passed_over(tmp_path, monkeypatch):
    """A store whose manifests this user may read but whose blobs it may not (another user's service) lists the
    models it can use and never fails the model list."""
    store = tmp_path / "ollama-models"
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    gguf = write_gguf(tiny_model("llama"), tmp_path / "tiny.gguf", quant="Q4_0")
    _pull(store, "registry.ollama.ai", "library", "tiny", "latest", gguf)
    other = tmp_path / "other.gguf"
    other.write_bytes(gguf.read_bytes() + b"\0")  # another digest: a blob of its own
    _pull(store, "registry.ollama.ai", "library", "other", "latest", other)
    hidden = next(m.blob for m in ollama_store.models() if m.name == "other:latest")
    real_stat = Path.stat

    def stat(path, *args, **kwargs):
        if path == hidden:
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    listed = [m.id for m in Registry().list() if m.id.startswith("ollama:")]
    assert listed == ["ollama:tiny:latest"]
