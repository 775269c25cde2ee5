"""The frozen-bundle look-ups (playground.bundle), on folders laid out like a bundle."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from playground import bundle
from playground.models import embedded


def test_not_frozen_has_no_bundle() -> None:
    assert bundle.bundle_dir() is None
    assert bundle.bundled_gguf() is None


def test_bundled_gguf_found_in_models(tmp_path: Path) -> None:
    assert bundle.bundled_gguf(tmp_path) is None
    (tmp_path / "models").mkdir()
    gguf = tmp_path / "models" / bundle.GGUF_NAME
    gguf.write_bytes(b"GGUF")
    assert bundle.bundled_gguf(tmp_path) == gguf


def test_frozen_bundle_dir_is_meipass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert bundle.bundle_dir() == tmp_path
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / bundle.GGUF_NAME).write_bytes(b"GGUF")
    assert bundle.bundled_gguf() == tmp_path / "models" / bundle.GGUF_NAME


def test_gguf_name_matches_the_embedded_model() -> None:
    assert bundle.GGUF_NAME == embedded.GGUF_NAME
