"""A local diffusers folder whose weights are pickles (.bin) is refused unless pickles are allowed, as single
checkpoint files already were; safetensors beside a .bin are what loads (issue 15, item 2)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from playground.domain.image import ImageRequest
from playground.engine.image import generate, load_image_model
from playground.errors import UnsupportedModel
from tests.image.tiny_sd import build_tiny_sd


@pytest.fixture(scope="module")
def bin_only_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sd(tmp_path_factory.mktemp("tiny-sd-bin") / "tiny-sd-bin", safetensors=False)


def test_a_bin_only_folder_is_refused_and_named(bin_only_dir: Path):
    assert not list(bin_only_dir.rglob("*.safetensors")) and list(bin_only_dir.rglob("*.bin"))
    with pytest.raises(UnsupportedModel, match=r"pickle weights only \(text_encoder, unet, vae"):
        load_image_model(str(bin_only_dir), device="cpu")


def test_allowed_explicitly_it_loads(bin_only_dir: Path):
    model = load_image_model(str(bin_only_dir), device="cpu", allow_pickle=True)
    result = generate(model, ImageRequest("a red circle", steps=1, seed=1))
    assert result.images[0].size == (64, 64)


def test_a_pickle_beside_safetensors_is_never_read(tiny_sd_dir: Path, bin_only_dir: Path, tmp_path: Path):
    mixed = shutil.copytree(tiny_sd_dir, tmp_path / "mixed")
    garbage = b"not a pickle: reading this would fail the load"
    for part in ("unet", "vae", "text_encoder"):
        for name in (p.name for p in (bin_only_dir / part).glob("*.bin")):
            (mixed / part / name).write_bytes(garbage)
    model = load_image_model(str(mixed), device="cpu")  # safetensors only: the .bin files are never opened
    assert generate(model, ImageRequest("a red circle", steps=1, seed=1)).images
