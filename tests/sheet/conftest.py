"""Fixtures for the Sheet mode: a tiny random llama with room for few-shot prompts, and sheets to fill."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground.tasks.sheet import Sheet
from tests.tiny import build_tiny_llama


@pytest.fixture(scope="session")
def tiny512_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-512"), context=512)


@pytest.fixture(scope="session")
def tiny512(tiny512_dir: Path):
    from playground.engine.text import load_text_model

    return load_text_model("tiny-512", tiny512_dir, device="cpu", dtype="float32")


def capitals(empty: int = 4) -> Sheet:
    """Country -> capital, the last ``empty`` capitals blank."""
    pairs = [("France", "Paris"), ("Japan", "Tokyo"), ("Kenya", "Nairobi"), ("Canada", "Ottawa"),
             ("Italy", "Rome"), ("Germany", "Berlin"), ("Spain", "Madrid"), ("Egypt", "Cairo"),
             ("Norway", "Oslo"), ("Peru", "Lima"), ("Chile", "Santiago"), ("Greece", "Athens")]
    rows = [[c, cap] for c, cap in pairs]
    for row in rows[len(rows) - empty:]:
        row[1] = ""
    return Sheet(["Country", "Capital"], rows)
