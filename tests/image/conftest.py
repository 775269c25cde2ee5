"""Image-mode fixtures: a tiny random SD folder and its loaded model (built once per session), the demo model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.image.tiny_sd import build_tiny_sd


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sd(tmp_path_factory.mktemp("tiny-sd") / "tiny-sd")


@pytest.fixture(scope="session")
def tiny_sd(tiny_sd_dir: Path):
    from playground.engine.image import load_image_model

    return load_image_model(str(tiny_sd_dir), device="cpu")


@pytest.fixture(scope="session")
def demo_model():
    from playground.engine.image import load_image_model
    from playground.models.demo_image import DEMO_IMAGE_ID

    return load_image_model(DEMO_IMAGE_ID, device="cpu")
