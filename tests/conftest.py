"""Shared fixtures: a temp data dir per test, a tiny random llama built in-process, the embedded model."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import platformdirs
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from playground import paths  # noqa: E402

# Where the set-up script put the embedded model, read before the per-test data dirs replace the variable.
_SETUP_HOME = os.environ.get(paths.ENV_HOME)


@pytest.fixture(autouse=True)
def data_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty data dir."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv(paths.ENV_HOME, str(home))
    paths.set_data_dir(None)
    yield home
    paths.set_data_dir(None)


@pytest.fixture(autouse=True)
def no_dangling_engine_threads():
    """Fail a test that leaves an engine worker running (napari's _dangling_qthreads, for our runner)."""
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        alive = [t.name for t in threading.enumerate() if t.name.startswith("engine") and t.is_alive()]
        if not alive:
            return
        time.sleep(0.05)
    pytest.fail(f"engine threads still running after the test: {alive}")


def build_tiny_llama(folder: Path, context: int = 96) -> Path:
    """Save a random 2-layer llama with a byte-level tokenizer (257 tokens, id 256 = EOS) to ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    config = LlamaConfig(vocab_size=257, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=context,
                         eos_token_id=256, bos_token_id=None, pad_token_id=None, tie_word_embeddings=True,
                         initializer_range=0.4)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path):
    from playground.engine.text import load_text_model

    return load_text_model("tiny-llama", tiny_model_dir, device="cpu")


def embedded_home() -> Path:
    """The real data dir the set-up script converted the embedded model into (shared across test runs)."""
    return Path(_SETUP_HOME or platformdirs.user_data_dir(paths.APP_NAME, appauthor=False))


@pytest.fixture(scope="session")
def embedded_model():
    from playground.engine.text import load_text_model
    from playground.models.embedded import EMBEDDED_ID, ensure_embedded

    paths.set_data_dir(embedded_home())
    try:
        folder = ensure_embedded()
    finally:
        paths.set_data_dir(None)
    return load_text_model(EMBEDDED_ID, folder, device="cpu")
