"""The generic fast path: a decoder family without a fused runner (GPT-NeoX here) runs with every linear layer on
the quantized kernels and a static KV cache, and computes what transformers computes on the rounded weights."""

from __future__ import annotations

import pytest
import torch

from playground.domain.text import GenerationRequest
from playground.engine.fast import kernels
from playground.engine.generate import generate
from playground.engine.text import load_text_model
from tests.tiny import byte_tokenizer

pytestmark = pytest.mark.usefixtures("exact_fp32")  # compared with transformers to 1e-4


@pytest.fixture(scope="module")
def neox_dir(tmp_path_factory):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    folder = tmp_path_factory.mktemp("neox")
    config = GPTNeoXConfig(vocab_size=257, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, max_position_embeddings=256, eos_token_id=256, bos_token_id=None)
    torch.manual_seed(0)
    GPTNeoXForCausalLM(config).save_pretrained(str(folder))
    byte_tokenizer().save_pretrained(str(folder))
    return folder


def test_generic_path_runs_the_kernels_and_matches_transformers_on_the_rounded_weights(neox_dir):
    tm = load_text_model("neox", neox_dir, device="cpu", precision="int4")
    assert tm.path == "generic" and "gpt_neox" in tm.path_reason
    assert kernels.available(), kernels.unavailable_reason()
    assert tm.fast.replaced >= 2 * 4  # every linear of both layers (and the head)
    ref = load_text_model("neox", neox_dir, device="cpu", path="transformers")
    quantized = dict(tm.model.named_modules())
    with torch.no_grad():
        for name, module in ref.model.named_modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.copy_(quantized[name].lin.dequantized())
    ids = list(range(60, 110))
    with torch.inference_mode():
        want = ref.model(torch.tensor([ids])).logits[0]
        rows = [tm.fast.prefill(0, ids[:30])] + [tm.fast.step([t], [0])[0] for t in ids[30:]]
    got = torch.stack(rows)
    assert float((got - want[29:]).abs().max() / want.abs().max()) < 1e-4


def test_generation_on_the_generic_path_rewinds_for_n_completions(neox_dir):
    tm = load_text_model("neox", neox_dir, device="cpu", precision="int8")
    req = GenerationRequest(prompt="The cat", temperature=1.0, max_new_tokens=8, seed=3)
    both = generate(tm, GenerationRequest(**{**req.__dict__, "n": 2}))
    singles = [generate(tm, GenerationRequest(**{**req.__dict__, "seed": 3 + i})).first.text for i in range(2)]
    assert [c.text for c in both.completions] == singles
