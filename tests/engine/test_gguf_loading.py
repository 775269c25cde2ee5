"""A .gguf file runs on the fast runner straight from its memory map: per family, the runner's logits equal
transformers' forward on the file's dequantized weights; the registry and the loader take it without a conversion
folder, with progress; what the loader cannot read falls back to transformers' conversion, saying so; the embedded
SmolLM2 Q4_1 GGUF gives the same greedy text as the converted folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from playground import paths
from playground.engine.fast import kernels
from playground.engine.fast.gguf_model import load_gguf
from playground.engine.gguf_text import load_gguf_text_model
from playground.errors import UnsupportedModel
from tests.gguf_files import rel_error, tiny_model, write_gguf

IDS = torch.randint(3, 300, (40,), generator=torch.Generator().manual_seed(2)).tolist()
SPLIT = 28
WIDE = {"hidden_size": 256, "intermediate_size": 256}  # K-quants need rows of whole 256-weight blocks
# (family, type of the 2-D weights, shape overrides): each family once, each block type at least once; rows that
# are not whole K-quant blocks (Qwen3's and Gemma's o_proj) take Q8_0, as llama.cpp's quantizer does.
CASES = [("llama", "Q4_K", WIDE), ("qwen2", "Q4_0", {}), ("qwen3", "Q6_K", WIDE), ("gemma3_text", "Q5_K", WIDE),
         ("gemma2", "Q8_0", {}), ("phi3", "Q4_1", {}), ("qwen2", "Q5_1", {}), ("llama", "BF16", {}),
         ("llama", "Q3_K", WIDE), ("qwen2", "Q2_K", WIDE), ("qwen3", "IQ4_XS", WIDE), ("gemma2", "IQ4_NL", {})]

pytestmark = pytest.mark.usefixtures("exact_fp32")  # compared with transformers to 1e-4


@pytest.mark.parametrize(("family", "quant", "shape"), CASES, ids=[f"{f}-{q}" for f, q, _ in CASES])
def test_runner_on_a_gguf_equals_transformers_on_its_dequantized_weights(family, quant, shape, tmp_path):
    path = write_gguf(tiny_model(family, **shape), tmp_path / "m.gguf", quant=quant)
    floats = quant == "BF16"  # float weights: fp32 asked for, so the runner computes exactly what the file holds
    tm = load_gguf_text_model("m", path, device="cpu", precision="fp32" if floats else None)
    assert tm.fast is not None and tm.hf_model is None  # no transformers model, no fp32 copy
    assert kernels.available() and tm.path == ("python" if floats else "fused"), kernels.unavailable_reason()
    assert "GGUF" in tm.describe()
    tm.fast.cache_dtype_name = "fp32"  # the fp16 cache of quantized precisions is not what is compared here
    with torch.inference_mode():
        rows = [tm.fast.prefill(0, IDS[:SPLIT])] + [tm.fast.step([t], [0])[0] for t in IDS[SPLIT:]]
        ref = load_gguf(path, tokenizer=False).to_transformers()(torch.tensor([IDS])).logits[0, SPLIT - 1:]
    assert rel_error(torch.stack(rows), ref) < 1e-4


def test_models_add_then_load_reads_the_gguf_directly_with_progress(tmp_path):
    from playground.models.registry import Registry
    from playground.runtime.dispatch import load_model

    path = write_gguf(tiny_model("qwen2"), tmp_path / "tiny-qwen.gguf", quant="Q4_0")
    info = Registry().add(path)
    events = []
    tm = load_model(info.id, device="cpu", on_progress=events.append)
    assert tm.path == "fused" and tm.precision == "int4" and "GGUF Q4_0" in tm.describe()
    assert not any(paths.models_dir().glob("gguf-*")) if paths.models_dir().exists() else True  # no conversion
    fractions = [e.fraction for e in events if e.fraction is not None]
    assert fractions and fractions[-1] == 1.0 and any(0 < f < 1 for f in fractions)
    assert any(e.stage == "Preparing layers in the file's formats" for e in events)  # not "at int4": Q4_0 kept
    text = tm.tokenizer.decode(tm.tokenizer("the theme").input_ids, skip_special_tokens=True)
    assert text == "the theme"
    assert tm.eos_ids == frozenset({2}) and tm.context_length == 256


def test_fp32_precision_runs_transformers_on_the_dequantized_weights(tmp_path):
    path = write_gguf(tiny_model("llama"), tmp_path / "l.gguf", quant="Q8_0")
    tm = load_gguf_text_model("l", path, device="cpu", precision="fp32")
    assert tm.path == "transformers" and "dequantized" in tm.path_reason
    ref = load_gguf(path, tokenizer=False).to_transformers()
    with torch.no_grad():
        assert torch.equal(tm.model(torch.tensor([IDS])).logits, ref(torch.tensor([IDS])).logits)


def test_an_unreadable_tensor_type_falls_back_to_transformers_conversion_and_says_so(tmp_path):
    """IQ2_XXS: a type the loader does not repack, which transformers' GGUF reader (gguf-py) dequantizes."""
    from playground.runtime.dispatch import load_model

    path = write_gguf(tiny_model("qwen2", **WIDE), tmp_path / "iq.gguf", quant="IQ2_XXS")
    with pytest.raises(UnsupportedModel, match="IQ2_XXS"):  # what the direct loader says
        load_gguf(path)
    events = []
    tm = load_model(str(path), device="cpu", on_progress=events.append)
    assert tm.weights_source == "GGUF converted by transformers" and "IQ2_XXS" in tm.path_reason
    assert any("converting it with transformers" in e.stage for e in events)


def test_an_unsupported_architecture_says_which(tmp_path):
    from playground.runtime.dispatch import load_model

    path = write_gguf(tiny_model("llama"), tmp_path / "odd.gguf", arch="rwkv7")
    with pytest.raises(UnsupportedModel, match="rwkv7"):
        load_model(str(path), device="cpu")


@pytest.mark.parametrize("drop", [("model.layers.1.mlp.down_proj",), ("model.",)], ids=["a-tensor", "all-weights"])
def test_a_gguf_missing_weights_is_refused_not_run_with_random_ones(drop, tmp_path):
    """A file without some of its weights (cut down, or vocabulary-only) is refused with a message saying so:
    transformers' conversion, the fallback, would initialise what is missing at random and write noise."""
    from playground.runtime.dispatch import load_model

    path = write_gguf(tiny_model("qwen2"), tmp_path / "broken.gguf", drop=drop)
    with pytest.raises(UnsupportedModel, match="holds no weights for|lacks 1 of its tensors"):
        load_model(str(path), device="cpu")
    assert not list(paths.models_dir().glob("gguf-broken-*"))  # no converted folder left behind


def test_a_gguf_with_a_nan_scale_is_refused_naming_the_tensor(tmp_path):
    """A Q4_0 block whose fp16 scale is NaN had loaded (Q4_0 has no offsets, the one part checked) and failed only
    when sampling; now the load is refused, naming the file and the tensor."""
    from playground.engine.fast.gguf_read import GgufFile
    from playground.runtime.dispatch import load_model

    path = write_gguf(tiny_model("qwen2"), tmp_path / "nan.gguf", quant="Q4_0")
    offset = GgufFile(path).tensors["blk.0.ffn_down.weight"].offset
    data = bytearray(path.read_bytes())
    data[offset:offset + 2] = b"\x00\x7e"  # the first block's d: fp16 NaN
    path.write_bytes(bytes(data))
    with pytest.raises(UnsupportedModel, match="nan.gguf: blk.0.ffn_down.weight: its Q4_0 scales are not all finite"):
        load_model(str(path), device="cpu")


def test_a_gguf_larger_than_free_memory_is_refused_before_loading(tmp_path, monkeypatch):
    """Repacking past the machine's memory would end in the OOM killer taking the app (and unsaved work) down: a
    load that needs more than is free stops first with OutOfMemory, naming the need and what is free."""
    from playground.engine import memory_check
    from playground.errors import OutOfMemory
    from playground.runtime.dispatch import load_model

    path = write_gguf(tiny_model("qwen2"), tmp_path / "big.gguf", quant="Q4_0")
    monkeypatch.setattr(memory_check, "available_bytes", lambda: 50_000)
    with pytest.raises(OutOfMemory, match=r"big\.gguf needs about .* of memory once loaded and this machine has "
                                          r"49 KB free"):
        load_model(str(path), device="cpu")
    from tests.tiny import build_tiny_llama

    folder = build_tiny_llama(tmp_path / "folder")  # a safetensors folder: checked the same way
    with pytest.raises(OutOfMemory, match="needs about .* of memory once loaded"):
        load_model(str(folder), device="cpu")
    monkeypatch.setattr(memory_check, "available_bytes", lambda: None)  # cannot tell: no check
    tm = load_model(str(path), device="cpu")
    assert tm.fast is not None
    # the features that read the model again at fp32 (Inspect's reference forward, LoRA training) check too
    monkeypatch.setattr(memory_check, "available_bytes", lambda: 50_000)
    with pytest.raises(OutOfMemory, match=r"big\.gguf at fp32 \(for this feature\) needs about"):
        tm.model_loader()


def test_metadata_that_does_not_fit_the_tensors_names_the_first_mismatch(tmp_path):
    """A header whose head count does not divide the width (a hand-edited or miswritten file): the message had
    been transformers' first line alone ("Error(s) in loading state_dict for ...:"), then the tensor transformers'
    conversion found mismatched; the header check now names the entry itself, before any conversion."""
    from playground.errors import DamagedModel
    from playground.runtime.dispatch import load_model

    model = tiny_model("qwen2")
    model.config.num_attention_heads = 3  # 64 wide: the tensors were made for 4 heads of 16
    path = write_gguf(model, tmp_path / "heads.gguf", quant="Q8_0")
    with pytest.raises(DamagedModel, match=r"^heads\.gguf: the file's qwen2\.attention\.head_count_kv is 2, which "
                                           r"does not divide its 3 attention heads$"):
        load_model(str(path), device="cpu")
    assert not any(paths.models_dir().glob("gguf-*"))  # no conversion tried


def test_a_split_gguf_loads_from_any_of_its_parts_as_the_single_file_does(tmp_path):
    """A model split by gguf-split (NAME-00001-of-00003.gguf, ...) loads from whichever part is named, on the fast
    path, with the single file's logits; the model manager lists it once, by the name without the part, with the
    size of all its parts; a missing part is named, and so is a part renamed so that the others cannot be found."""
    from playground.models.registry import Registry
    from playground.runtime.dispatch import load_model

    model = tiny_model("qwen2")
    for sub in ("one", "split"):
        (tmp_path / sub).mkdir()
    single = write_gguf(model, tmp_path / "one" / "tiny.gguf", quant="Q4_0")
    first = write_gguf(model, tmp_path / "split" / "tiny.gguf", quant="Q4_0", split_max_tensors=10)
    parts = sorted(first.parent.glob("tiny-*-of-*.gguf"))
    assert len(parts) == 3 and first == parts[0]
    reference = load_model(str(single), device="cpu").fast.prefill(0, IDS, reuse=False)
    for part in (parts[0], parts[1]):
        tm = load_model(str(part), device="cpu")
        assert tm.fast is not None
        assert torch.equal(tm.fast.prefill(0, IDS, reuse=False), reference)
    info = Registry().add(parts[1])
    assert info.id == "tiny" and info.size_bytes == sum(p.stat().st_size for p in parts)
    renamed = parts[0].with_name("tiny-first.gguf")
    renamed.write_bytes(parts[0].read_bytes())
    with pytest.raises(UnsupportedModel, match="part 1 of a GGUF split in 3, but not named as gguf-split names"):
        load_model(str(renamed), device="cpu")
    parts[2].unlink()
    with pytest.raises(UnsupportedModel, match="tiny-00003-of-00003.gguf is not beside it"):
        load_model(str(parts[0]), device="cpu")


@pytest.mark.embedded
def test_embedded_q4_1_gguf_gives_the_same_greedy_text_as_the_converted_folder(embedded_model):
    from playground.domain.text import GenerationRequest
    from playground.engine.generate import generate
    from playground.models import embedded
    from tests.conftest import embedded_home

    paths.set_data_dir(embedded_home())
    try:
        gguf_path = embedded.gguf_file()
    finally:
        paths.set_data_dir(None)
    tm = load_gguf_text_model("smollm2-gguf", gguf_path, device="cpu")
    assert tm.path == embedded_model.path == "fused" and tm.precision == embedded_model.precision == "int4"
    for prompt in ("The capital of France is", "def fibonacci(n):", "Once upon a time"):
        req = GenerationRequest(prompt=prompt, max_new_tokens=32, temperature=0.0, seed=0)
        assert generate(tm, req).completions[0].text == generate(embedded_model, req).completions[0].text


def test_cli_models_add_says_how_a_gguf_will_load_and_complete_runs_it(tmp_path, capsys):
    import json

    from playground.cli.main import main

    good = write_gguf(tiny_model("llama"), tmp_path / "tiny-llama.gguf", quant="Q4_0")
    odd = write_gguf(tiny_model("qwen2", **WIDE), tmp_path / "odd.gguf", quant="IQ2_XXS")
    assert main(["models", "add", str(good)]) == 0
    assert "loads directly: llama, F32/Q4_0" in capsys.readouterr().out
    assert main(["models", "add", str(odd)]) == 0
    assert "transformers' GGUF conversion (slower, once): tensor types IQ2_XXS" in capsys.readouterr().out
    assert main(["complete", "--model", "tiny-llama", "--prompt", "the", "--temperature", "0", "--max-tokens", "4",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["finish_reason"] in {"stop", "length"}


def test_cli_models_add_refuses_a_damaged_gguf_and_registers_nothing(tmp_path, capsys):
    """A download cut short had been registered ("loads through transformers' GGUF conversion") and failed on
    every load; it is now refused with the reason, exit status 1."""
    import json

    from playground.cli.main import main

    whole = write_gguf(tiny_model("llama"), tmp_path / "whole.gguf", quant="Q4_0")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert main(["models", "add", str(cut)]) == 1
    err = capsys.readouterr().err
    assert "cut.gguf is not a valid GGUF file" in err and "past the end of the file" in err
    assert main(["models", "--json"]) == 0
    assert [m for m in json.loads(capsys.readouterr().out) if m["id"] == "cut"] == []


def test_a_gguf_missing_a_size_the_model_needs_is_refused_as_incomplete(tmp_path, capsys):
    """A file without its ``llama.embedding_length`` had failed inside the loader (TypeError, shown as a bug), then
    again in transformers' conversion; it is now one clear error, and no conversion is tried."""
    from playground.cli.main import main as main_cli
    from playground.errors import DamagedModel
    from playground.runtime.dispatch import load_model
    from tests.gguf_files import header_only_gguf

    empty = header_only_gguf(tmp_path / "empty.gguf", sizes=False)
    stages: list[str] = []
    with pytest.raises(DamagedModel) as caught:
        load_model(str(empty), device="cpu", on_progress=lambda e: stages.append(e.stage))
    assert str(caught.value) == "empty.gguf: the file's llama.embedding_length is missing: not a complete llama model"
    assert not any("transformers" in stage for stage in stages)
    assert main_cli(["models", "add", str(empty)]) == 1  # and it is not added
    assert "empty.gguf: the file's llama.embedding_length is missing" in capsys.readouterr().err


HEADER_DAMAGE = [("attention.head_count_kv", 0, "is 0, which does not divide its 4 attention heads"),
                 ("attention.head_count_kv", 3, "is 3, which does not divide its 4 attention heads"),
                 ("embedding_length", 7, "is 7, but its token_embd.weight holds 64 values a token"),
                 ("context_length", 0, "is '0', not a positive whole number"),
                 ("rope.freq_base", -1.0, "is '-1.0', not a positive number"),
                 ("rope.freq_base", float("nan"), "is 'nan', not a positive number")]


@pytest.mark.parametrize(("key", "value", "said"), HEADER_DAMAGE, ids=[f"{k}={v}" for k, v, _ in HEADER_DAMAGE])
def test_header_sizes_that_cannot_describe_the_model_are_refused_by_name(key, value, said, tmp_path):
    """A width the embedding tensor does not have had failed inside the RoPE set-up as an IndexError (shown as a
    bug); KV heads of 0 as a division by zero; a negative RoPE base had gone on to transformers' conversion."""
    import gguf

    from playground.errors import DamagedModel

    path = write_gguf(tiny_model("llama"), tmp_path / "m.gguf")
    header = gguf.GGUFReader(str(path), "r+")
    header.fields[f"llama.{key}"].parts[-1][0] = value
    del header
    with pytest.raises(DamagedModel, match=re.escape(said)) as caught:
        load_gguf(path)
    assert str(caught.value).startswith(f"m.gguf: the file's llama.{key} ")


def test_a_gguf_whose_merges_make_tokens_its_vocabulary_lacks_is_refused_with_the_reason(tmp_path, capsys):
    """The tokenizers library refuses such a vocabulary with a bare Exception (or panics through pyo3, a
    BaseException): either had escaped the loader as a crash with a traceback."""
    from playground.cli.main import main as main_cli
    from playground.errors import DamagedModel
    from playground.runtime.dispatch import load_model

    path = write_gguf(tiny_model("qwen2"), tmp_path / "bad-merges.gguf", merges=("a b",))
    with pytest.raises(DamagedModel, match="^bad-merges.gguf: its tokenizer cannot be built .*`ab`"):
        load_model(str(path), device="cpu")
    assert main_cli(["complete", "--model", str(path), "--prompt", "x", "--max-tokens", "1"]) == 1
    assert "its tokenizer cannot be built from the file's vocabulary" in capsys.readouterr().err


def test_a_failed_transformers_conversion_is_a_refusal_that_leaves_no_partial_folder(tmp_path):
    """A type our reader does not take (IQ2_XXS) sends the file to transformers' conversion, whose tokenizer then
    fails on the bad merges: an error of the library's own, which had escaped as a crash."""
    from playground.runtime.dispatch import load_model

    path = write_gguf(tiny_model("qwen2", **WIDE), tmp_path / "iq-bad.gguf", quant="IQ2_XXS", merges=("a b",))
    with pytest.raises(UnsupportedModel, match="IQ2_XXS.*transformers' GGUF conversion failed too .Could not convert"):
        load_model(str(path), device="cpu")
    assert not any(paths.models_dir().glob("gguf-*"))  # neither a converted folder nor a partial one


def test_a_library_panic_while_loading_is_a_clear_refusal_not_a_crash():
    """pyo3 raises a Rust panic as a BaseException that ``except Exception`` lets through."""
    from playground.engine.device import loading_errors

    panic = type("PanicException", (BaseException,), {})
    with pytest.raises(UnsupportedModel, match="Could not load m: its tokenizer is malformed .range end index"):
        with loading_errors("m", torch.device("cpu")):
            raise panic("range end index 2 out of range for slice of length 1")
    with pytest.raises(KeyboardInterrupt):  # an interrupt stays one
        with loading_errors("m", torch.device("cpu")):
            raise KeyboardInterrupt


def _mapped_kb(path) -> int:
    """KB of ``path``'s pages this process has mapped (its mappings' Rss in /proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if "-" in line.split(" ", 1)[0] and ":" not in line.split(" ", 1)[0]:  # a mapping's header line
            inside = line.endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads the process's mappings (Linux /proc)")
def test_a_loaded_gguf_leaves_none_of_its_file_mapped(tmp_path):
    """Every tensor is copied out of the file (quantized ones repacked, norms and biases copied) and the file's
    pages are let go as the load reads them, the header's too: none stay mapped beside the copies, so the app's
    memory (and its peak) counts each weight once. Pages mapped by reading a neighbour count as well (one touch
    maps a page-cache folio of up to 2 MB: 146 MB of Qwen2.5-3B's Q4_K_M file stayed mapped once)."""
    path = write_gguf(tiny_model("qwen2", **WIDE), tmp_path / "m.gguf", quant="Q4_K")
    path.read_bytes()  # in the page cache, as a file just downloaded or copied is
    loaded = load_gguf(path, lazy=True)
    held = [loaded.tensors[name] for name in loaded.tensors]  # as the runner reads them, all kept
    assert len(held) > 10 and _mapped_kb(path) == 0
    tm = load_gguf_text_model("m", path, device="cpu")
    assert tm.fast is not None
    tm.fast.prefill(0, IDS, reuse=False)  # the norms and biases in use
    assert _mapped_kb(path) == 0


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads the process's mappings (Linux /proc)")
def test_q5_k_weights_are_read_from_the_file_and_give_the_repacked_copys_numbers(tmp_path, monkeypatch):
    """Asked for (PLAYGROUND_Q5K_IN_PLACE=1), where the AVX512-VNNI kernels run, a Q5_K_M file's Q5_K tensors are
    not copied at load (llama.cpp maps them too: its first load had been 2.5-3.6x faster than ours): the runner
    reads the file's blocks, and prefill and decode give the repacked copy's logits bit for bit."""
    from playground.engine.fast import int5_kernel

    monkeypatch.setenv(int5_kernel.ENV_IN_PLACE, "1")
    if not int5_kernel.reads_q5k_blocks():
        pytest.skip("Q5_K is read in place where the AVX512-VNNI int5 kernels run")
    path = write_gguf(tiny_model("llama", **WIDE), tmp_path / "m.gguf", quant="Q5_K")
    path.read_bytes()

    def run(tm):
        first = tm.fast.prefill(0, IDS[:SPLIT], reuse=False)
        return [first, *(tm.fast.step([t], [0])[0] for t in IDS[SPLIT:])]

    tm = load_gguf_text_model("m", path, device="cpu")
    assert tm.describe().endswith("Q5_K read in place")
    kept = run(tm)
    assert _mapped_kb(path) > 0  # the values are the file's own pages
    monkeypatch.delenv(int5_kernel.ENV_IN_PLACE)
    copy = load_gguf_text_model("m", path, device="cpu")
    assert "read in place" not in copy.describe()
    assert all(torch.equal(a, b) for a, b in zip(kept, run(copy), strict=True))


@pytest.mark.parametrize("quant", ["Q4_0", "Q4_K", "Q6_K", "Q5_K", "Q5_1"])
def test_large_tensors_repack_in_pieces_into_the_same_weights(quant, tmp_path, monkeypatch):
    """A tensor larger than a repack piece (16 MB of file; here 512 bytes) is repacked a few rows at a time into
    the whole tensor's memory (the compiled repack writes in place; Q5_1's numpy repack is copied in), its file
    pages dropped as it goes, so the load's peak memory is not the embedding twice: the pieces assemble into the
    weights a whole-tensor repack gives (rows undone by the converter stay one piece)."""
    from playground.engine.fast import gguf_model

    path = write_gguf(tiny_model("llama", **WIDE), tmp_path / "m.gguf", quant=quant)
    whole = load_gguf(path, tokenizer=False).tensors  # repacked now, in one piece each
    monkeypatch.setattr(gguf_model, "REPACK_CHUNK_BYTES", 512)
    pieces = load_gguf(path, tokenizer=False, lazy=True).tensors
    quantized = 0
    for name in whole:
        a, b = whole[name], pieces[name]
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), name
            continue
        quantized += 1
        assert type(a) is type(b) and len(a.segment()) == len(b.segment()), name
        for x, y in zip(a.segment(), b.segment(), strict=True):
            assert torch.equal(x, y), name
    assert quantized >= 7


def test_the_tokenizer_builds_with_the_cycle_collector_paused_and_restores_it_even_when_it_fails(tmp_path,
                                                                                            monkeypatch):
    """A tokenizer build makes hundreds of thousands of long-lived objects (Gemma's 515k merges): the collector's
    full passes over them cost 0.1-0.25 s of a first load. It is off while the tokenizer is built, and back on
    after, failed build or not (a collector left off would let the app's cyclic garbage grow for good)."""
    import gc

    from playground.engine.fast import gguf_tokenizer

    path = write_gguf(tiny_model("qwen2"), tmp_path / "m.gguf", quant="Q4_0")
    real = gguf_tokenizer.build_tokenizer
    seen: list[bool] = []

    def watched(meta):
        seen.append(gc.isenabled())
        return real(meta)

    monkeypatch.setattr(gguf_tokenizer, "build_tokenizer", watched)
    tm = load_gguf_text_model("m", path, device="cpu")
    assert seen == [False] and gc.isenabled()
    assert tm.tokenizer.decode(tm.tokenizer.encode("hello world")).endswith("hello world")

    def broken(meta):
        raise UnsupportedModel("GGUF tokenizer model 'rwkv' is not supported")

    monkeypatch.setattr(gguf_tokenizer, "build_tokenizer", broken)
    with pytest.raises(UnsupportedModel, match="rwkv"):
        load_gguf(path)
    assert gc.isenabled()
