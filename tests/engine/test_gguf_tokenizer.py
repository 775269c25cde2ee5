"""The SentencePiece-style GGUF tokenizer (``tokenizer.ggml.model`` = llama: scores, no merges) that
``gguf_tokenizer`` builds in a fraction of a second encodes like the one transformers' own GGUF conversion builds,
for a Llama-style vocabulary (merges ordered by score) and a Gemma-style one (ordered by place in the file)."""

from __future__ import annotations

import random

import pytest

from playground.engine.fast.gguf_tokenizer import build_tokenizer

TEXTS = ["the cat sat on the mat", "  leading spaces and a tab\tthen\nnew lines", "thethethe catcat",
         "unknown: ß ∑ 😀 zq", "abc abd abe the then there"]


def _vocabulary(seed: int) -> tuple[list[str], list[float]]:
    """Bytes for fallback, single characters, and substrings of the texts' words (with and without "▁")."""
    rng = random.Random(seed)
    pieces: set[str] = set()
    for text in TEXTS:
        for word in text.split():
            for w in (word, "\u2581" + word):
                for i in range(len(w)):
                    for j in range(i + 1, min(len(w), i + 6) + 1):
                        if rng.random() < 0.6:
                            pieces.add(w[i:j])
    chars = sorted({c for p in pieces for c in p} | {"\u2581"})
    words = sorted(pieces - set(chars))
    rng.shuffle(words)
    tokens = ["<unk>", "<s>", "</s>", *[f"<0x{b:02X}>" for b in range(256)], *chars, *words]
    scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [-1000.0] * len(chars) + [-float(i) for i in range(len(words))]
    return tokens, scores


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_sentencepiece_vocabulary_encodes_like_transformers(arch):
    from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer

    tokens, scores = _vocabulary(seed=3)
    types = [2, 3, 3] + [6] * 256 + [1] * (len(tokens) - 259)
    meta = {"general.architecture": arch, "tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": tokens,
            "tokenizer.ggml.scores": scores, "tokenizer.ggml.token_type": types,
            "tokenizer.ggml.unknown_token_id": 0, "tokenizer.ggml.bos_token_id": 1,
            "tokenizer.ggml.eos_token_id": 2}
    if arch == "gemma3":
        meta["tokenizer.ggml.add_space_prefix"] = False
    ours = build_tokenizer(meta)._tokenizer
    theirs, _ = convert_gguf_tokenizer(arch, {"tokenizer_type": "llama", "tokens": tokens, "scores": scores,
                                              "token_type": types, "unk_token_id": 0, "bos_token_id": 1,
                                              "eos_token_id": 2,
                                              **({"add_prefix_space": False} if arch == "gemma3" else {})})
    for text in TEXTS:
        expected = theirs.encode(text, add_special_tokens=False).ids
        assert ours.encode(text, add_special_tokens=False).ids == expected, text


def test_compiled_merges_equal_the_python_ones():
    """The library's merge builder (Gemma's 262k tokens: ~2M lookups, 515k merges) ranks exactly the merges the
    Python one does: multi-byte characters cut at character boundaries, tied scores broken the same way, a repeated
    token counted once at its first place with its last id and score (as the vocabulary dict built in order)."""
    import numpy as np

    from playground.engine.fast import gguf_tokenizer, kernels

    if not kernels.available():
        if kernels.compiler_present():
            pytest.fail("the kernel library did not build although a compiler is present")
        pytest.skip("no C++ compiler here")
    tokens, scores = _vocabulary(seed=5)
    tokens.append(tokens[300])
    scores = np.asarray([*scores, 5.0])
    scores[400:420] = -3.0  # ties
    scores[420:425] = np.nan  # after every other score, as numpy sorts them
    scores[425:430] = -np.inf
    vocab = {t: i for i, t in enumerate(tokens)}
    compiled = gguf_tokenizer._compiled_merges(tokens, scores)
    python = gguf_tokenizer._ranked_merges(tokens, vocab, scores)
    assert compiled is not None
    assert [c.tolist() for c in compiled] == [p.tolist() for p in python]
    pairs = list(zip(*(p.tolist() for p in python), strict=True))
    assert len(pairs) > 100
    assert any(len(tokens[left] + tokens[right]) != len((tokens[left] + tokens[right]).encode())
               for left, right in pairs)  # multi-byte characters
    assert any(len(tokens) - 1 in pair for pair in pairs)  # the repeated token's last id
    merged = {tokens[left] + tokens[right] for left, right in pairs[:5]}
    assert tokens[300] in merged  # its last score (5.0, the best) ranks its merges first


def test_the_compiled_pair_list_builds_the_merges_the_tokenizer_takes(monkeypatch):
    """The library's C function returns exactly the (left, right) string pairs Python's zip builds, the very string
    objects of the vocabulary; an id outside it raises IndexError instead of reading past the list; a library
    without the function leaves the list to Python, with the same merges."""
    import numpy as np

    from playground.engine.fast import kernels

    if not kernels.available():
        if kernels.compiler_present():
            pytest.fail("the kernel library did not build although a compiler is present")
        pytest.skip("no C++ compiler here")
    tokens, _ = _vocabulary(seed=7)
    rng = np.random.default_rng(0)
    left, right = rng.integers(0, len(tokens), 1000), rng.integers(0, len(tokens), 1000)
    pairs = kernels.pair_list(tokens, left, right)
    assert pairs == [(tokens[a], tokens[b]) for a, b in zip(left.tolist(), right.tolist(), strict=True)]
    assert all(p[0] is tokens[a] for p, a in zip(pairs, left.tolist(), strict=True))
    assert kernels.pair_list(tokens, left[:0], right[:0]) == []
    with pytest.raises(IndexError):
        kernels.pair_list(tokens, np.array([0, len(tokens)]), np.array([0, 0]))
    with pytest.raises(IndexError):
        kernels.pair_list(tokens, np.array([-1]), np.array([0]))
    from playground.engine.fast import gguf_tokenizer

    scores = np.asarray(_vocabulary(seed=7)[1])
    vocab = {t: i for i, t in enumerate(tokens)}
    compiled = gguf_tokenizer._merges(tokens, vocab, scores)
    monkeypatch.setitem(kernels._state, "pair_list", False)  # as where the symbol is not exported
    assert kernels.pair_list(tokens, left, right) is None
    assert gguf_tokenizer._merges(tokens, vocab, scores) == compiled and len(compiled) > 100
