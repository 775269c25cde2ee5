"""The image engine on a tiny random SD pipeline: loading, seeds, schedulers, previews, cancel, sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from playground.domain.image import ImageRequest
from playground.domain.jobs import Cancel
from playground.engine.image import generate, load_image_model
from playground.errors import KnownError, ParameterError, UnsupportedModel

STEPS = 3


def req(**kw) -> ImageRequest:
    return ImageRequest(**{"prompt": "a red circle", "steps": STEPS, "seed": 7, **kw})


def test_load_from_folder(tiny_sd):
    assert tiny_sd.family == "sd"
    assert tiny_sd.defaults["width"] == tiny_sd.defaults["height"] == 64  # sample size 32 × VAE factor 2
    assert not tiny_sd.demo
    assert "LCM" not in tiny_sd.schedulers and "Euler a" in tiny_sd.schedulers


def test_same_seed_same_image_and_previews(tiny_sd):
    events = []
    a = generate(tiny_sd, req(), events.append)
    b = generate(tiny_sd, req())
    c = generate(tiny_sd, req(seed=8))
    assert [e.step for e in events] == list(range(1, STEPS + 1))
    assert all(e.total == STEPS for e in events)
    assert events[0].preview.dtype == np.uint8 and events[0].preview.shape == (32, 32, 3)
    assert np.array_equal(np.array(a.images[0]), np.array(b.images[0]))
    assert not np.array_equal(np.array(a.images[0]), np.array(c.images[0]))
    assert a.images[0].size == (64, 64) and a.seeds == (7,) and not a.cancelled
    assert a.timings["steps"] == STEPS and a.timings["s_per_step"] > 0


@pytest.mark.parametrize("name", ["Euler", "Euler a", "DPM++ 2M", "DDIM", "euler_a"])
def test_schedulers_swap(tiny_sd, name):
    r = generate(tiny_sd, req(scheduler=name, steps=2))
    assert r.settings["scheduler"].lower().replace(" ", "_") == name.lower().replace(" ", "_")
    assert len(r.images) == 1


def test_default_scheduler_restored(tiny_sd):
    generate(tiny_sd, req(scheduler="Euler", steps=1))
    r = generate(tiny_sd, req(steps=1))
    assert r.settings["scheduler"] == "DDIM"  # the folder's own scheduler


def test_unknown_scheduler(tiny_sd):
    with pytest.raises(KnownError, match="Unknown scheduler"):
        generate(tiny_sd, req(scheduler="heun++"))


def test_cancel_at_step_k_returns_nothing(tiny_sd):
    cancel = Cancel()
    events = []

    def on_event(e):
        events.append(e)
        if e.step == 2:
            cancel.set()

    r = generate(tiny_sd, req(steps=6), on_event, cancel)
    assert r.cancelled and r.images == ()
    assert [e.step for e in events] == [1, 2]  # stopped within one step


def test_batch_seeds(tiny_sd):
    r = generate(tiny_sd, req(batch=2, steps=2))
    assert r.seeds == (7, 8) and len(r.images) == 2


def test_sizes_validated(tiny_sd):
    with pytest.raises(ParameterError, match="multiple of 8"):
        generate(tiny_sd, req(width=60))
    with pytest.raises(KnownError, match="does not fit"):
        generate(tiny_sd, req(width=1024, height=1024))
    r = generate(tiny_sd, req(width=48, height=32, steps=1))
    assert r.images[0].size == (48, 32)


def test_pickle_checkpoint_refused(tmp_path: Path):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not really a checkpoint")
    with pytest.raises(UnsupportedModel, match="pickle"):
        load_image_model(str(ckpt), device="cpu")
    other = tmp_path / "model.txt"
    other.write_text("x")
    with pytest.raises(UnsupportedModel, match="safetensors"):
        load_image_model(str(other), device="cpu")


def test_unsupported_folder(tmp_path: Path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    with pytest.raises(UnsupportedModel, match="FluxPipeline"):
        load_image_model(str(tmp_path), device="cpu")


def test_single_file_safetensors(tiny_sd_dir: Path, tmp_path: Path):
    """A .safetensors checkpoint goes through from_single_file; a non-SD file gives a clear error, not a crash."""
    import torch
    from safetensors.torch import save_file

    f = tmp_path / "weights.safetensors"
    save_file({"foo": torch.zeros(2)}, str(f))
    with pytest.raises(KnownError):
        load_image_model(str(f), device="cpu", single_file_config=str(tiny_sd_dir))


def test_sdxl_folder_loads_and_generates(tmp_path: Path):
    from tests.image.tiny_sd import build_tiny_sdxl

    folder = build_tiny_sdxl(tmp_path / "tiny-sdxl-turbo")
    model = load_image_model(str(folder), device="cpu")
    assert model.family == "sdxl-turbo" and model.defaults["steps"] == 1 and model.defaults["guidance"] == 0.0
    events = []
    r = generate(model, req(steps=2, guidance=5.0, negative_prompt="blue"), events.append)
    again = generate(model, req(steps=2, guidance=5.0, negative_prompt="blue"))
    assert len(events) == 2 and r.images[0].size == (64, 64) and r.settings["scheduler"] == "Euler"
    assert np.array_equal(np.array(r.images[0]), np.array(again.images[0]))


def test_unknown_hf_id_offline_is_a_clear_error(monkeypatch):
    from playground.engine.image import resolve_image_source
    from playground.errors import ModelNotFound

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises((ModelNotFound, KnownError)):
        resolve_image_source("nobody/no-such-sd-model")
