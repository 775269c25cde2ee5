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


# -- fine-tuning (LoRA): a tiny llama wide enough to learn a small table in a few dozen steps -------------------
SHAPE64 = {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2}


@pytest.fixture(scope="session")
def tiny64_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-64"), context=512, **SHAPE64)


@pytest.fixture(scope="session")
def tiny64(tiny64_dir: Path):
    from playground.engine.text import load_text_model

    return load_text_model("tiny-64", tiny64_dir, device="cpu", dtype="float32")


COLOURS = ["red", "blue", "green", "black", "white", "pink", "grey", "brown", "gold", "teal", "navy", "lime"]


def codes(rows: int = 8) -> Sheet:
    """Colour -> a made-up 3-letter code: nothing a model could know, so it can only be learnt from the rows."""
    import random

    rng = random.Random(1)
    return Sheet(["Colour", "Code"], [[c, "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3))]
                                      for c in COLOURS[:rows]])


def kinds(rows: int = 12) -> Sheet:
    """Item "n°1", "n°2" … -> "paint" for every row: a rule one row shows, so held-out rows can be answered after
    training (by a model that could not know it: few-shot on a random model cannot)."""
    return Sheet(["Item", "Kind"], [[f"n°{i + 1}", "paint"] for i in range(rows)])
