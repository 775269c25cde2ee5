"""GGUF byte-level tokenizers against llama.cpp's own, for every pre-tokenizer family the loader reads: a
vocabulary-only GGUF per ``tokenizer.ggml.pre`` name (the embedded model's 49,152-token vocabulary and merges), the
same texts tokenized by llama-cpp-python (``vocab_only``) and by ``build_tokenizer``; the ids must be equal.

Needs the cached build from ``bash scripts/llama_cpp_env.sh`` and the embedded GGUF; skipped with the reason when
either is missing (``.venv/bin/python -m pytest -m llama_cpp``).
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from playground.engine.fast.gguf_read import GgufFile
from playground.engine.fast.gguf_tokenizer import build_tokenizer
from playground.engine.fast.quality import varied_text
from tests.llama_cpp_env import embedded_gguf, llama_python

pytestmark = pytest.mark.llama_cpp

# one name or more per split, "" for a file that names none (llama.cpp's default split)
PRES = ("", "default", "gpt-2", "olmo", "smollm", "starcoder", "command-r", "llama-bpe", "falcon-h1", "dbrx",
        "qwen2", "stablelm2", "megrez", "tekken", "gpt-4o", "llama4", "deepseek-llm", "deepseek-coder")
_TOKENIZE = """
import json, sys
from llama_cpp import Llama
texts = json.load(open(sys.argv[1]))
out = {}
for path in sys.argv[2:]:
    llm = Llama(model_path=path, vocab_only=True, verbose=False)
    out[path] = [llm.tokenize(t.encode("utf-8"), add_bos=False, special=False) for t in texts]
print(json.dumps(out))
"""


def _texts() -> list[str]:
    """The varied text's lines, and random strings mixing scripts, digits, emoji, punctuation and whitespace."""
    rng = random.Random(7)
    alphabet = list("abcXYZ éÉüß日本語中文한국ЖжΩω0123456789 \t\n\r.,;:!?'\"-_/\\()[]{}<>@#$%^&*+=~|`") + \
        ["🎉", "🦙", "😶‍🌫️", "'s", "'LL", "  ", "\n\n", "HTTPServer", "don't", "I'M", "1234567"]
    lines = [line for line in varied_text().splitlines() if line.strip()]
    return lines + ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(300)]


def _write_vocab_file(path: Path, pre: str, source: dict) -> None:
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    for add, value in ((w.add_context_length, 2048), (w.add_embedding_length, 64), (w.add_block_count, 1),
                       (w.add_feed_forward_length, 128), (w.add_head_count, 4), (w.add_head_count_kv, 4),
                       (w.add_rope_freq_base, 10000.0), (w.add_layer_norm_rms_eps, 1e-5),
                       (w.add_vocab_size, len(source["tokenizer.ggml.tokens"])), (w.add_rope_dimension_count, 16)):
        add(value)
    w.add_tokenizer_model("gpt2")
    if pre:
        w.add_tokenizer_pre(pre)
    w.add_token_list(source["tokenizer.ggml.tokens"])
    w.add_token_types([int(t) for t in source["tokenizer.ggml.token_type"]])
    w.add_token_merges(source["tokenizer.ggml.merges"])
    w.add_add_bos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()


def test_every_pre_tokenizer_family_tokenizes_as_llama_cpp(tmp_path):
    python, source = llama_python(), GgufFile(embedded_gguf()).metadata
    texts = _texts()
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    files = {pre: tmp_path / f"vocab-{pre or 'none'}.gguf" for pre in PRES}
    for pre, path in files.items():
        _write_vocab_file(path, pre, source)
    run = subprocess.run([str(python), "-c", _TOKENIZE, str(tmp_path / "texts.json"), *map(str, files.values())],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    theirs = json.loads(run.stdout)
    for pre, path in files.items():
        tok = build_tokenizer(GgufFile(path).metadata)
        differ = [t for t, ids in zip(texts, theirs[str(path)], strict=True)
                  if tok(t, add_special_tokens=False)["input_ids"] != ids]
        assert not differ, f"pre {pre or '(none)'}: {len(differ)} of {len(texts)} texts differ, e.g. {differ[:3]!r}"
