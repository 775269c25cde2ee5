"""The quantized-weights cache (playground/engine/fast/store.py): bytes changed on disk are caught by the stored
checksum and the weights rebuilt; a read-only data dir or a full disk while saving costs only the cache, never
the load or the completion; a data dir moved elsewhere keeps its cache (nothing absolute in the key)."""

from __future__ import annotations

import json
import resource
import shutil
import signal
import struct

import pytest

from playground import paths
from playground.domain.text import GenerationRequest
from playground.engine.fast.store import store_path
from playground.engine.generate import generate
from playground.engine.text import load_text_model
from tests.tiny import build_tiny_llama

SHAPE = {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2}
REQUEST = GenerationRequest(prompt="the cat sat on", max_new_tokens=24, temperature=0.0, seed=0)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-store"), context=200, **SHAPE)


def _load(folder, events=None):
    return load_text_model("tiny", folder, device="cpu", precision="int4",
                           on_progress=(events.append if events is not None else lambda e: None))


def _text(tm) -> str:
    return generate(tm, REQUEST).completions[0].text


def test_flipped_bytes_in_the_stored_weights_are_caught_and_rebuilt(folder):
    expected = _text(_load(folder))
    path = store_path(folder, "int4")
    data = bytearray(path.read_bytes())
    (header,) = struct.unpack("<Q", data[:8])
    start = 8 + header
    for i in range(start, min(len(data), start + 4096)):  # the first tensors' bytes, size unchanged
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    events = []
    again = _load(folder, events)
    assert any("first load at this precision" in e.stage for e in events)  # quantized again, not read back
    assert _text(again) == expected
    meta = json.loads(path.read_bytes()[8:8 + header])["__metadata__"]
    assert path.read_bytes() != bytes(data) and len(meta["sha256"]) == 64  # rewritten, with its checksum
    events.clear()
    _load(folder, events)  # and the rewritten file is used as is
    assert not any("first load at this precision" in e.stage for e in events)


def test_a_data_dir_that_cannot_be_written_still_loads_and_completes(folder, data_home):
    (data_home / "quantized").write_text("not a folder")  # mkdir fails, as on a read-only data dir (we run as root)
    events = []
    tm = _load(folder, events)
    notes = [e.stage for e in events if "not saved" in e.stage]
    assert notes and "next load quantizes again" in notes[0]
    assert tm.fast.weights.extra["store_note"] == notes[0]
    assert _text(tm)  # the completion is there


def test_a_full_disk_while_saving_still_loads_and_completes(folder, data_home):
    """RLIMIT_FSIZE makes writes past a size fail with EFBIG, as a full disk fails them with ENOSPC: safetensors
    raises its own SafetensorError (not an OSError), which must not escape."""
    expected = _text(_load(folder))  # stored in this test's data dir; remove it so that the next load saves again
    store_path(folder, "int4").unlink()
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    events = []
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, old_limit[1]))
        tm = _load(folder, events)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert any("SafetensorError" in e.stage and "not saved" in e.stage for e in events)
    assert not store_path(folder, "int4").exists()
    assert not list((data_home / "quantized").glob("*.tmp*"))  # no half-written file left behind
    assert _text(tm) == expected


def test_a_moved_data_dir_keeps_its_stored_weights(tmp_path):
    first_home = tmp_path / "home-a"
    model = build_tiny_llama(first_home / "models" / "tiny", context=200, **SHAPE)  # as the embedded model is
    paths.set_data_dir(first_home)
    try:
        expected = _text(_load(model))
        stored = store_path(model, "int4")
        assert stored.is_file()
        moved_home = tmp_path / "elsewhere" / "home-b"
        moved_home.parent.mkdir()
        shutil.move(first_home, moved_home)
        paths.set_data_dir(moved_home)
        moved_model = moved_home / "models" / "tiny"
        assert store_path(moved_model, "int4").name == stored.name
        events = []
        tm = _load(moved_model, events)
        assert not any("first load at this precision" in e.stage for e in events)  # read back, not re-quantized
        assert _text(tm) == expected
    finally:
        paths.set_data_dir(None)


def test_a_stored_load_reads_almost_nothing_of_the_original_weights(folder, monkeypatch):
    """Loading from the store must not read the float checkpoint it replaces (a membership test once read every
    linear weight in full: 0.43 GB read and dropped per load of the embedded model)."""
    from playground.engine.fast import safetensors_read

    _load(folder)  # the store exists
    read: list[int] = []
    original = safetensors_read.SafetensorsTensors.__getitem__

    def counting(self, name):
        t = original(self, name)
        if name.startswith("model."):
            read.append(t.numel() * t.element_size())
        return t

    monkeypatch.setattr(safetensors_read.SafetensorsTensors, "__getitem__", counting)
    total = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    events = []
    assert _text(_load(folder, events))
    assert not any("first load at this precision" in e.stage for e in events)
    assert sum(read) < total * 0.25, (sum(read), total)  # norms and a probe of layer 0, not the linears
