"""Compare fixtures: a second tiny llama (a different shape, so it is a different model) and a pool loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny import build_tiny_llama


@pytest.fixture(scope="session")
def tiny_model_dir_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-b"), hidden_size=48, intermediate_size=96)


@pytest.fixture
def path_loader():
    """Load a model id that is a folder path, on the CPU in fp32; records every load."""
    from playground.engine.text import load_text_model

    calls: list[str] = []

    def load(model_id: str, on_progress):
        calls.append(model_id)
        return load_text_model(model_id, Path(model_id), device="cpu", dtype="float32")

    load.calls = calls
    return load


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.image.tiny_sd import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("tiny-sd") / "tiny-sd")


@pytest.fixture(scope="session")
def tiny_sd(tiny_sd_dir: Path):
    from playground.engine.image import load_image_model

    return load_image_model(str(tiny_sd_dir), device="cpu")
