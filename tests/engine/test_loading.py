"""Model folders that cannot be loaded say why, in one sentence."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from playground.engine.text import load_text_model
from playground.errors import DamagedModel, ModelNotFound, UnsupportedModel


def test_missing_folder(tmp_path):
    with pytest.raises(ModelNotFound, match="not found"):
        load_text_model("x", tmp_path / "nope")


def test_folder_without_config(tmp_path):
    with pytest.raises(UnsupportedModel, match="no config.json"):
        load_text_model("x", tmp_path)


def test_pickle_weights_are_refused_by_default(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(UnsupportedModel, match="pickle"):
        load_text_model("x", tmp_path)


def test_unknown_architecture(tmp_path, tiny_model_dir):
    folder = tmp_path / "odd"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "made-up-arch"
    config["architectures"] = ["MadeUpForCausalLM"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModel, match="unsupported model type|Could not load"):
        load_text_model("odd", folder)


def test_an_unknown_activation_is_named(tmp_path, tiny_model_dir):
    folder = tmp_path / "odd-act"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["hidden_act"] = "made_up_act"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModel, match="transformers does not know 'made_up_act' .check the model's config"):
        load_text_model("odd-act", folder)


def test_a_folder_without_tokenizer_files_is_refused_before_its_weights_are_read(tmp_path, tiny_model_dir):
    """Weights and config.json alone (the tokenizer's files left behind in a download): transformers had given it an
    empty tokenizer, the layers were prepared, and then every prompt failed as "Nothing to complete"."""
    folder = tmp_path / "weights-only"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, folder / name)
    stages: list[str] = []
    with pytest.raises(UnsupportedModel, match="weights-only has no tokenizer files .tokenizer.json, tokenizer.model"):
        load_text_model("weights-only", folder, on_progress=lambda e: stages.append(e.stage))
    assert not any("layers" in stage.lower() for stage in stages)
    shutil.copy(tiny_model_dir / "tokenizer.json", folder / "tokenizer.json")  # with its tokenizer, it loads
    assert load_text_model("weights-only", folder).tokenizer("the cat")["input_ids"]


@pytest.mark.parametrize(("method", "named"), [("gptq", "GPTQ"), ("awq", "AWQ"), ("bitsandbytes", "bitsandbytes")])
def test_weights_quantized_for_gpu_kernels_are_refused_with_what_to_load_instead(tmp_path, tiny_model_dir, method,
                                                                                 named):
    """A GPTQ / AWQ / bitsandbytes checkpoint (a common download): transformers had asked for ``pip install
    optimum``, whose kernels need CUDA anyway; the message now says what runs here."""
    folder = tmp_path / f"model-{method}"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = {"quant_method": method, "bits": 4}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModel, match=f"model-{method} holds {named}-quantized weights.*original weights"
                                               ".*or a GGUF of it"):
        load_text_model("q", folder)


def test_a_tokenizer_file_cut_short_is_named_as_the_tokenizers(tmp_path, tiny_model_dir):
    """The message had been json's alone ("Expecting property name enclosed in double quotes …"), naming no file."""
    folder = tmp_path / "cut-tokenizer"
    shutil.copytree(tiny_model_dir, folder)
    text = (folder / "tokenizer.json").read_text()
    (folder / "tokenizer.json").write_text(text[: len(text) // 2])
    with pytest.raises(DamagedModel, match="cut-tokenizer: its tokenizer files cannot be read .* Fetch them again"):
        load_text_model("cut", folder)


def test_a_model_that_needs_its_own_code_says_that_code_is_never_run(tmp_path, tiny_model_dir):
    """A config.json with ``auto_map`` and a model type transformers lacks: its text had asked the user to pass
    trust_remote_code=True, which nothing here lets them do (and which is never done)."""
    folder = tmp_path / "custom"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="made-up-custom", architectures=["CustomForCausalLM"],
                  auto_map={"AutoConfig": "configuration_custom.CustomConfig",
                            "AutoModelForCausalLM": "modeling_custom.CustomForCausalLM"})
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModel, match="custom: its model type 'made-up-custom' needs the model's own Python "
                                               "code, which Playground never runs .trust_remote_code.: use a GGUF"):
        load_text_model("custom", folder)


@pytest.mark.parametrize("precision", ["fp32", "int4"])
def test_weights_cut_short_or_a_shard_missing_are_named_before_anything_loads(tmp_path, tiny_model_dir, precision):
    """What a download that stopped leaves: transformers had said "Error while deserializing header: incomplete
    metadata, file not fully covered", and a missing shard came out as a bare "No such file or directory"."""
    from transformers import AutoModelForCausalLM

    cut = tmp_path / "cut"
    shutil.copytree(tiny_model_dir, cut)
    weights = cut / "model.safetensors"
    whole = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[: whole // 2])
    with pytest.raises(DamagedModel, match=rf"cut/model.safetensors is cut short \({whole // 2:,} of its {whole:,} "
                                           r"bytes\): a download that stopped\? Fetch it again"):
        load_text_model("cut", cut, precision=precision)
    sharded = tmp_path / "sharded"
    AutoModelForCausalLM.from_pretrained(tiny_model_dir).save_pretrained(sharded, max_shard_size="100KB")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, sharded / name)
    shards = sorted(sharded.glob("model-*.safetensors"))
    assert len(shards) > 1
    shards[-1].unlink()
    with pytest.raises(DamagedModel, match=f"sharded lacks {shards[-1].name}, which its "
                                           "model.safetensors.index.json lists"):
        load_text_model("sharded", sharded, precision=precision)


def test_corrupt_weights(tmp_path, tiny_model_dir):
    folder = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(UnsupportedModel, match="Could not load"):
        load_text_model("broken", folder)


def test_loads_on_cpu_in_fp32(tiny_model):
    assert tiny_model.device.type == os.environ.get("PLAYGROUND_TEST_DEVICE", "cpu").split(":")[0]
    assert str(tiny_model.dtype) == "torch.float32"
    assert tiny_model.context_length == 96
    assert 256 in tiny_model.eos_ids
