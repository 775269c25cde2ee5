"""The registry lists, adds, removes and resolves models; its file survives damage."""

from __future__ import annotations

import pytest

from playground import paths
from playground.errors import ModelNotFound, UnsupportedModel
from playground.models.embedded import EMBEDDED_ID
from playground.models.registry import Registry
from playground.runtime.runner import EngineRunner


def test_embedded_model_is_listed_first_and_not_ready_in_a_fresh_data_dir():
    models = Registry().list()
    assert models[0].id == EMBEDDED_ID
    assert models[0].source == "embedded" and models[0].kind == "text"
    assert models[0].ready is False


def test_add_folder_lists_it_with_its_size_and_resolves_it(tiny_model_dir):
    registry = Registry()
    info = registry.add(tiny_model_dir)
    assert info.source == "folder" and info.kind == "text" and info.size_bytes > 10_000
    assert info.id in [m.id for m in Registry().list()]  # persisted
    assert registry.resolve(info.id).folder == tiny_model_dir
    assert registry.add(tiny_model_dir).id == info.id  # adding twice keeps one entry
    registry.remove(info.id)
    assert info.id not in [m.id for m in registry.list()]


def test_add_gguf_file_is_registered(tmp_path):
    gguf = tmp_path / "little.gguf"
    gguf.write_bytes(b"GGUF")
    info = Registry().add(gguf)
    assert (info.id, info.source, info.size_bytes) == ("little", "gguf", 4)


def test_a_broken_gguf_gives_a_clear_message(tmp_path):
    gguf = tmp_path / "broken.gguf"
    gguf.write_bytes(b"not a gguf file")
    registry = Registry()
    registry.add(gguf)
    with pytest.raises(UnsupportedModel, match="Could not convert broken.gguf"):
        registry.resolve("broken")
    assert not list(paths.models_dir().glob("*.partial"))  # nothing half-written left behind


def test_add_refuses_what_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(UnsupportedModel):
        Registry().add(tmp_path / "notes.txt")
    with pytest.raises(ModelNotFound):
        Registry().add(tmp_path / "missing")


def test_damaged_registry_file_is_set_aside(tmp_path):
    (paths.data_dir() / "models.json").write_text("{not json")
    assert [m.id for m in Registry().list(include_hf_cache=False)] == [EMBEDDED_ID, "demo-shapes"]
    assert list(paths.data_dir().glob("models.json.damaged-*"))


def test_unknown_ids_and_offline_hub_ids_fail_clearly():
    with pytest.raises(ModelNotFound, match="Unknown model"):
        Registry().resolve("no-such-model")
    with pytest.raises(ModelNotFound, match="not in the Hugging Face cache"):
        Registry().resolve("someone/no-such-model-xyz")


def test_a_path_resolves_without_registering(tiny_model_dir):
    resolved = Registry().resolve(str(tiny_model_dir))
    assert resolved.folder == tiny_model_dir and resolved.info.source == "folder"


def test_runner_loads_generates_and_swaps_models(tiny_model_dir, tmp_path):
    import shutil

    from playground.domain.text import GenerationRequest

    other = shutil.copytree(tiny_model_dir, tmp_path / "other")
    runner = EngineRunner(device="cpu")
    try:
        info = runner.load(str(tiny_model_dir)).result(timeout=60)
        assert info.device == "cpu" and info.context_length == 96
        result = runner.generate(str(other), GenerationRequest(prompt="hi", temperature=0,
                                                               max_new_tokens=5)).result(timeout=60)
        assert result.model == str(other) and len(result.first.tokens) > 0
    finally:
        runner.shutdown()


def test_an_unconverted_embedded_model_is_read_from_its_gguf_without_a_conversion(monkeypatch):
    """A first launch (a bundle carrying the GGUF, or a data dir the set-up did not prepare) had converted the
    embedded GGUF with transformers before the first token (18-35 s here); the engine now reads the GGUF directly,
    and the model list says it is ready."""
    from playground.domain.text import GenerationRequest
    from playground.engine.generate import generate
    from playground.models import embedded
    from playground.runtime.dispatch import load_model
    from tests.conftest import embedded_home

    paths.set_data_dir(embedded_home())
    try:
        gguf = embedded.gguf_file()
    finally:
        paths.set_data_dir(None)
    monkeypatch.setenv(embedded.ENV_GGUF, str(gguf))  # as a bundle points at the GGUF it carries
    listed = Registry().list(include_hf_cache=False)[0]
    assert listed.id == EMBEDDED_ID and listed.ready and listed.size_bytes == gguf.stat().st_size
    stages: list[str] = []
    tm = load_model(EMBEDDED_ID, device="cpu", on_progress=lambda e: stages.append(e.stage))
    assert tm.path == "fused" and tm.weights_source.startswith("GGUF Q4_1")
    assert not any("onvert" in stage for stage in stages) and not embedded.embedded_dir().exists()
    req = GenerationRequest(prompt="The capital of France is", max_new_tokens=6, temperature=0.0, seed=0)
    assert "Paris" in generate(tm, req).completions[0].text


def test_a_folder_of_gguf_files_adds_its_one_model_or_asks_which(tmp_path, capsys):
    """A repository's GGUF download is a folder (``huggingface-cli download … --local-dir``), and the folder is what
    a user picks or drops: it had been refused as "neither a model folder (config.json) nor a .gguf file". Its one
    model is added (a split one by its first part); where it holds several quantizations, they are named."""
    from playground.cli.main import main
    from tests.gguf_files import header_only_gguf

    one = tmp_path / "one-model"
    one.mkdir()
    for n in (1, 2):
        header_only_gguf(one / f"Big-Q4_K_M-0000{n}-of-00002.gguf")
    header_only_gguf(one / "mmproj-Big-f16.gguf", arch="clip", kind="mmproj")  # its vision part: not a model
    assert main(["models", "add", str(one)]) == 0
    out = capsys.readouterr().out
    assert "added Big-Q4_K_M (gguf," in out and "Big-Q4_K_M-00001-of-00002.gguf" in out
    resolved = Registry().resolve(str(one), direct_gguf=True)  # `--model FOLDER` without adding it: the same file
    assert resolved.gguf == one / "Big-Q4_K_M-00001-of-00002.gguf"
    many = tmp_path / "many"
    many.mkdir()
    for quant in ("Q4_K_M", "Q8_0"):
        header_only_gguf(many / f"Small-{quant}.gguf")
    assert main(["models", "add", str(many)]) == 1
    err = capsys.readouterr().err
    assert "many holds 2 GGUF models (Small-Q4_K_M.gguf, Small-Q8_0.gguf): choose one of those files" in err
    assert [m.id for m in Registry().list() if m.id.startswith("Small")] == []


def test_a_gguf_repository_in_the_hugging_face_cache_loads_by_its_id(tmp_path, monkeypatch):
    """``--model org/Name-GGUF`` for a GGUF repository already in the Hugging Face cache: its snapshot folder had been
    handed to transformers' loader ("has no config.json"); now its one GGUF file loads, as the path would."""
    from playground.runtime.dispatch import load_model
    from tests.gguf_files import tiny_model, write_gguf

    hub = tmp_path / "hub"
    repo = hub / "models--someone--Tiny-GGUF"
    revision = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    gguf = write_gguf(tiny_model("llama"), snapshot / "Tiny-Q4_0.gguf", quant="Q4_0")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hub))
    resolved = Registry().resolve("someone/Tiny-GGUF", direct_gguf=True)
    assert resolved.gguf == gguf
    tm = load_model("someone/Tiny-GGUF", device="cpu")
    assert tm.fast is not None  # read directly, on the fast path


def test_a_gguf_file_not_named_as_one_is_added_under_the_name_its_header_gives(tmp_path, capsys):
    """Ollama keeps its models as ``blobs/sha256-<hex>`` files: such a file had been refused as "neither a model
    folder (config.json) nor a .gguf file". A file that begins as GGUF does is now taken, named by its header's
    ``general.name`` (a file name of 71 hex digits is no name to pick from a list)."""
    from playground.cli.main import main
    from tests.gguf_files import header_only_gguf

    blob = header_only_gguf(tmp_path / ("sha256-" + "ab" * 32), name="Llama 3.2 3B Instruct")
    assert main(["models", "add", str(blob)]) == 0
    assert "added Llama-3.2-3B-Instruct (gguf," in capsys.readouterr().out
    unnamed = header_only_gguf(tmp_path / "weights.bin")
    assert main(["models", "add", str(unnamed)]) == 0
    assert "added weights.bin (gguf," in capsys.readouterr().out
    text = tmp_path / "notes.bin"
    text.write_text("not a model")
    assert main(["models", "add", str(text)]) == 1
    assert "is neither a model folder (config.json) nor a .gguf file" in capsys.readouterr().err


@pytest.mark.parametrize(("kind", "arch", "said"), [("adapter", "llama", "is a LoRA adapter (general.type = adapter)"),
                                                    ("mmproj", "clip", "vision projector (mmproj), not a language")])
def test_an_adapter_or_a_vision_projector_gguf_is_refused_as_not_a_model(tmp_path, capsys, kind, arch, said):
    """Files that come beside a model in its repository: they had been "loaded through transformers' conversion",
    which failed on every pick; they are now refused when added, saying what they are."""
    from playground.cli.main import main
    from tests.gguf_files import header_only_gguf

    part = header_only_gguf(tmp_path / f"{kind}.gguf", kind=kind, arch=arch)
    assert main(["models", "add", str(part)]) == 1
    assert said in capsys.readouterr().err
    assert [m for m in Registry().list() if m.id == kind] == []
