"""Each supported family, written to GGUF the way llama.cpp's converter writes it, loads back into the same model:
the config the family's transformers class accepts, and the same logits (fp32, 1e-4)."""

from __future__ import annotations

import pytest
import torch

from playground.engine.fast.gguf_model import load_gguf
from playground.engine.fast.int4_kernel import Int4Weight
from playground.engine.fast.quant import Int8Group
from tests.gguf_files import rel_error, tiny_model, write_gguf

FAMILIES = ["llama", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3"]
IDS = torch.tensor([[1, 40, 71, 5, 200, 17, 99, 3, 250, 8, 60, 61, 62, 9]])  # longer than the sliding windows (4)


@pytest.mark.parametrize("family", FAMILIES)
def test_family_round_trips_through_gguf(family, tmp_path):
    model = tiny_model(family)
    path = write_gguf(model, tmp_path / f"{family}.gguf")
    loaded = load_gguf(path)
    cfg, ref = loaded.config, model.config
    assert cfg["model_type"] == ref.model_type
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                "intermediate_size", "vocab_size", "tie_word_embeddings", "max_position_embeddings"):
        assert cfg[key] == getattr(ref, key), key
    ours = loaded.to_transformers()  # the family's config class accepted the dict
    for key in ("sliding_window", "layer_types", "query_pre_attn_scalar", "attn_logit_softcapping",
                "final_logit_softcapping", "head_dim", "attention_bias", "hidden_activation", "hidden_act"):
        if hasattr(ref, key):
            assert getattr(ours.config, key) == getattr(ref, key), key
    assert ours.config.rope_parameters == ref.rope_parameters  # incl. llama 3 scaling rebuilt from rope_freqs
    with torch.no_grad():
        assert rel_error(ours(IDS).logits, model(IDS).logits) < 1e-4


@pytest.mark.parametrize(("family", "quant", "kind"), [("llama", "Q8_0", Int8Group), ("llama", "Q4_0", Int4Weight),
                                                       ("gemma3_text", "Q4_1", Int4Weight),
                                                       ("qwen2", "Q5_0", None)])
def test_quantized_weights_load_as_engine_formats_with_their_exact_values(family, quant, kind, tmp_path):
    """The loader's tensors are the file's quantized values, undone permutations included: the model rebuilt from
    them equals the original with each weight replaced by gguf-py's dequantization of its blocks. (Q5_0: int5 where
    its kernel runs, else int8.)"""
    import gguf

    from playground.engine.fast import int5_kernel

    kind = kind or (int5_kernel.Int5Weight if int5_kernel.runs_here() else Int8Group)

    model = tiny_model(family)
    loaded = load_gguf(write_gguf(model, tmp_path / "q.gguf", quant=quant), tokenizer=False)
    assert isinstance(loaded.tensors["model.layers.0.self_attn.q_proj.weight"], kind)
    assert loaded.source_types["model.layers.0.mlp.down_proj.weight"] == quant
    qtype = gguf.GGMLQuantizationType[quant]
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.copy_(torch.from_numpy(gguf.dequantize(gguf.quantize(p.numpy(), qtype), qtype)))
        assert rel_error(loaded.to_transformers()(IDS).logits, model(IDS).logits) < 1e-4


def test_llama3_rope_with_unusual_factors_is_solved_for(tmp_path):
    rope = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 4.0, "low_freq_factor": 1.0,
            "high_freq_factor": 2.0, "original_max_position_embeddings": 32}
    model = tiny_model("llama", rope_parameters=rope, hidden_size=128, intermediate_size=128,
                       num_attention_heads=2, num_key_value_heads=1)
    loaded = load_gguf(write_gguf(model, tmp_path / "l3.gguf"), tokenizer=False)
    got = loaded.config["rope_parameters"]
    assert got["rope_type"] == "llama3" and got["factor"] == 4.0
    with torch.no_grad():
        assert rel_error(loaded.to_transformers()(IDS).logits, model(IDS).logits) < 1e-4


def test_ollamas_own_gemma3_file_loads_as_the_text_model_it_holds(tmp_path, capsys):
    """Ollama writes Gemma 3's vision tower and projector into the language model's file (``v.*``, ``mm.*``;
    llama.cpp keeps them in an mmproj file and refuses such a file), and its RoPE bases under other keys. The tower
    had sent the file to transformers' conversion, which failed; the text model now loads directly: the original's
    logits (both bases read), and the same as a llama.cpp-style file's."""
    import numpy as np

    from playground.cli.main import main
    from playground.runtime.dispatch import load_model

    rope = {"full_attention": {"rope_type": "default", "rope_theta": 1e6},
            "sliding_attention": {"rope_type": "default", "rope_theta": 20000.0}}  # (not the 10,000 default)
    model = tiny_model("gemma3_text", rope_parameters=rope)
    rng = np.random.default_rng(0)
    tower = {"v.patch_embd.weight": rng.standard_normal((64, 48), dtype=np.float32),
             "v.blk.0.attn_q.weight": rng.standard_normal((64, 64), dtype=np.float32),
             "mm.input_projection.weight": rng.standard_normal((64, 64), dtype=np.float32)}
    exact = load_gguf(write_gguf(model, tmp_path / "f32.gguf", extra=tower, ollama=True), tokenizer=False)
    with torch.no_grad():
        assert rel_error(exact.to_transformers()(IDS).logits, model(IDS).logits) < 1e-4
    text_only = write_gguf(model, tmp_path / "text.gguf", quant="Q8_0")
    both = write_gguf(model, tmp_path / "with-vision.gguf", quant="Q8_0", extra=tower, ollama=True)
    assert main(["models", "add", str(both)]) == 0
    assert "loads directly: gemma3, F32/Q8_0 (its vision tower is left out: text only)" in capsys.readouterr().out
    with torch.inference_mode():
        ours = load_model(str(both), device="cpu").fast.prefill(0, IDS[0].tolist(), reuse=False)
        reference = load_model(str(text_only), device="cpu").fast.prefill(0, IDS[0].tolist(), reuse=False)
    assert torch.equal(ours, reference)
