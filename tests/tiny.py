"""Random llamas built in-process, so tests and benchmarks need no downloaded weights."""

from __future__ import annotations

from pathlib import Path

# SmolLM2-135M's shape (its config.json), for benchmarks of a full-size random model.
SMOLLM2_135M = {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
                "num_key_value_heads": 3, "max_position_embeddings": 8192, "rope_theta": 100000.0}

# Wide enough that a CPU matmul's rows come out differently (in their last bits) with the number of rows, as on the
# real model: what a test of "same prompt, same numbers, whatever ran before" needs.
WIDE = {"hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2}


def byte_tokenizer():
    """A byte-level BPE tokenizer with no merges: 256 byte tokens plus <|endoftext|> (id 256)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


def build_tiny_llama(folder: Path, context: int = 96, vocab_size: int = 257, **shape) -> Path:
    """Save a random llama (2 layers, hidden 32 unless ``shape`` says otherwise) with the byte tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    dims = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "max_position_embeddings": context, **shape}
    config = LlamaConfig(vocab_size=vocab_size, eos_token_id=256, bos_token_id=None, pad_token_id=None,
                         tie_word_embeddings=True, initializer_range=0.4, **dims)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    byte_tokenizer().save_pretrained(str(folder))
    return folder


def rounded_transformers(tm, folder: Path):
    """transformers' own model of a tiny llama ``folder`` whose weights are what ``tm``'s fast runner multiplies by
    (dequantized): a quantized path should compute what this computes, up to its activations' rounding."""
    import torch

    from playground.engine.text import load_text_model

    ref = load_text_model(tm.id, folder, device="cpu", dtype="float32", path="transformers")
    with torch.no_grad():
        for layer, block in zip(tm.fast.weights.layers, ref.model.model.layers, strict=True):
            att, mlp = block.self_attn, block.mlp
            sizes = [att.q_proj.weight.shape[0], att.k_proj.weight.shape[0], att.v_proj.weight.shape[0]]
            for lin, w in zip((att.q_proj, att.k_proj, att.v_proj), layer.qkv.parts[0].dequantized().split(sizes),
                              strict=True):
                lin.weight.copy_(w)
            att.o_proj.weight.copy_(layer.o.parts[0].dequantized())
            gate, up = layer.gate_up.parts[0].dequantized().split(mlp.gate_proj.weight.shape[0])
            mlp.gate_proj.weight.copy_(gate)
            mlp.up_proj.weight.copy_(up)
            mlp.down_proj.weight.copy_(layer.down.parts[0].dequantized())
        ref.model.lm_head.weight.copy_(tm.fast.weights.head.dequantized())  # tied: the embedding too
    return ref
