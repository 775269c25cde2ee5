"""GGUF repositories by Hub id with a quantization (``org/Name-GGUF:Q4_K_M``, as llama.cpp's ``-hf`` names them).
No hub is reachable here: ``snapshot_download`` and the file listing are stood in for by a local repository that
fills a real Hugging Face cache layout the way the Hub client does (only the files the patterns ask for)."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground.errors import ModelNotFound, UnsupportedModel
from playground.models import hub_gguf
from playground.models.registry import Registry
from tests.hub_fake import REPO, fake_hub


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[list[str]]]:
    return fake_hub(tmp_path, monkeypatch)


def test_a_quantization_named_in_any_case_fetches_that_file_alone_and_runs_it(hub):
    from playground.runtime.dispatch import load_model

    cache, asked = hub
    tm = load_model(f"{REPO}:q4_0", device="cpu")
    assert tm.fast is not None  # read directly, on the fast path
    assert asked and all(p.endswith(".gguf") and "4_0" in p.upper() for p in asked[0])
    fetched = sorted(p.name for p in cache.rglob("*.gguf"))
    assert fetched == ["Tiny-Q4_0.gguf"]  # not the Q8_0 beside it
    again = Registry().resolve(f"{REPO}:Q4_0", direct_gguf=True)  # from the cache, as the same file
    assert again.gguf is not None and again.gguf.name == "Tiny-Q4_0.gguf" and again.info.id == f"{REPO}:Q4_0"
    ollama_style = Registry().resolve(f"hf.co/{REPO}:Q4_0", direct_gguf=True)
    assert ollama_style.gguf == again.gguf
    parts = load_model(f"{REPO}:F16", device="cpu")  # the split model in its folder: all its parts fetched
    assert parts.id == f"{REPO}:F16" and parts.weights_source.startswith("GGUF F16")
    assert len(list(cache.rglob("Tiny-F16-*-of-*.gguf"))) == len(list(cache.parent.glob("remote/F16/*.gguf"))) > 1
    listed = {m.id: m for m in Registry().list() if m.id.startswith(REPO)}  # the picker: each fetched quantization
    assert sorted(listed) == [f"{REPO}:F16", f"{REPO}:Q4_0"] and listed[f"{REPO}:Q4_0"].source == "hf-cache"
    assert listed[f"{REPO}:F16"].size_bytes == sum(p.stat().st_size for p in cache.rglob("Tiny-F16-*.gguf"))


def test_a_quantization_the_repository_lacks_or_none_at_all_says_what_it_has(hub):
    said = r"someone/Tiny-GGUF holds GGUF files, not a transformers model: name a quantization, e.g. "
    with pytest.raises(UnsupportedModel, match=said + r"someone/Tiny-GGUF:Q4_0 \(it has F16, Q4_0, Q8_0\)"):
        Registry().resolve(REPO, direct_gguf=True)
    with pytest.raises(ModelNotFound, match=r"someone/Tiny-GGUF has no GGUF file of Q5_K_M \(it has F16, Q4_0, "
                                            r"Q8_0\)"):
        Registry().resolve(f"{REPO}:Q5_K_M", direct_gguf=True)
    with pytest.raises(UnsupportedModel, match=r"someone/Tiny-GGUF:Tiny matches 3 models .* name its quantization"):
        Registry().resolve(f"{REPO}:Tiny", direct_gguf=True)  # a word of every file's name: nothing fetched
    assert not list((hub[0]).rglob("*.gguf"))
    with pytest.raises(UnsupportedModel, match=r"someone/Tiny-GGUF has no config.json, so it is not a transformers "
                                               r"model; if it holds GGUF files, name a quantization"):
        Registry().resolve(REPO, direct_gguf=True)  # found in the cache now: the Hub is not asked again


def test_a_quantization_named_in_full_wins_over_longer_ones_it_is_a_word_of():
    names = ["M-Q4_0.gguf", "M-Q4_0_4_4.gguf", "M-Q4_K_M.gguf", "M-Q4_K_S.gguf", "Q8_0/M-Q8_0-00001-of-00002.gguf",
             "Q8_0/M-Q8_0-00002-of-00002.gguf", "mmproj-M-Q8_0.gguf"]
    assert hub_gguf.choose(names, "q4_0", "o/M") == ["M-Q4_0.gguf"]
    assert hub_gguf.choose(names, "Q8_0", "o/M") == names[4:6]  # both parts of the split one, not the projector
    with pytest.raises(UnsupportedModel, match=r"o/M:Q4_K matches 2 models \(M-Q4_K_M.gguf, M-Q4_K_S.gguf\)"):
        hub_gguf.choose(names, "Q4_K", "o/M")


def test_quantization_tags_and_ids():
    names = ["Llama-3.2-1B-Instruct-Q4_K_M.gguf", "qwen2.5-0.5b-instruct-q8_0.gguf", "model-IQ4_XS.gguf",
             "Big-Q5_K_M-00001-of-00002.gguf", "Big-Q5_K_M-00002-of-00002.gguf", "mmproj-model-f16.gguf",
             "model-BF16.gguf", "README.md"]
    assert hub_gguf.quant_tags(names) == ["BF16", "IQ4_XS", "Q4_K_M", "Q5_K_M", "Q8_0"]
    assert hub_gguf.split_quant("org/Name-GGUF:Q4_K_M") == ("org/Name-GGUF", "Q4_K_M")
    assert hub_gguf.split_quant("org/Name") == ("org/Name", None)
    assert hub_gguf.split_quant("remote:server/model") == ("remote:server/model", None)  # not a hub id
    assert hub_gguf.split_quant("hf.co/org/Name-GGUF:Q8_0") == ("org/Name-GGUF", "Q8_0")  # as Ollama writes it
    assert hub_gguf.split_quant("https://huggingface.co/org/Name/") == ("org/Name", None)


def test_offline_a_hub_id_is_refused_at_once_not_after_the_network_times_out(monkeypatch):
    """With HF_HUB_OFFLINE set (as this suite runs), nothing is asked of the network: without a connection the
    listing had taken 24 s to fail here."""
    import time

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    started = time.monotonic()
    with pytest.raises(ModelNotFound, match=r"nobody/Model-GGUF is not in the Hugging Face cache and could not be "
                                            r"listed \(ConnectionError\)"):
        Registry().resolve("nobody/Model-GGUF:Q4_K_M", direct_gguf=True)
    assert time.monotonic() - started < 5
