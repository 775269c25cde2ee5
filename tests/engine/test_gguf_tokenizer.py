"""The SentencePiece-style GGUF tokenizer (``tokenizer.ggml.model`` = llama: scores, no merges) that
``gguf_tokenizer`` builds in a fraction of a second encodes like the one transformers' own GGUF conversion builds,
for a Llama-style vocabulary (merges ordered by score) and a Gemma-style one (ordered by place in the file)."""

from __future__ import annotations

import random

import pytest

from playground.engine.fast.gguf_tokenizer import build_tokenizer
from playground.errors import UnsupportedModel

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


def _meta(arch: str, tokens: list[str], scores: list[float]) -> dict:
    types = [2, 3, 3] + [6] * 256 + [1] * (len(tokens) - 259)
    meta = {"general.architecture": arch, "tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": tokens,
            "tokenizer.ggml.scores": scores, "tokenizer.ggml.token_type": types,
            "tokenizer.ggml.unknown_token_id": 0, "tokenizer.ggml.bos_token_id": 1,
            "tokenizer.ggml.eos_token_id": 2}
    if arch == "gemma3":
        meta["tokenizer.ggml.add_space_prefix"] = False
    return meta


def _transformers_tokenizer(arch: str, meta: dict) -> object:
    from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer

    theirs, _ = convert_gguf_tokenizer(arch, {"tokenizer_type": "llama", "tokens": meta["tokenizer.ggml.tokens"],
                                              "scores": meta["tokenizer.ggml.scores"],
                                              "token_type": meta["tokenizer.ggml.token_type"], "unk_token_id": 0,
                                              "bos_token_id": 1, "eos_token_id": 2,
                                              **({"add_prefix_space": False} if arch == "gemma3" else {})})
    return theirs


def _random_texts(tokens: list[str], n: int, seed: int) -> list[str]:
    """Runs of the vocabulary's own pieces and characters, spaces, and characters it lacks (byte fallback)."""
    rng = random.Random(seed)
    pieces = [t.replace("\u2581", " ") for t in tokens[259:]] + [" ", "  ", "\n", "ß", "😀", "zq", "日本"]
    return TEXTS + ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 12))) for _ in range(n)]


def _uses_library_split(tok, monkeypatch) -> bool:
    """Whether encoding goes through the library's split (``SpmSplit._pieces`` called)."""
    from playground.engine.fast.spm_split import SpmSplit

    calls = []
    real = SpmSplit._pieces
    monkeypatch.setattr(SpmSplit, "_pieces", lambda self, i, normalized: calls.append(i) or real(self, i, normalized))
    tok.encode("the cat", add_special_tokens=False)
    monkeypatch.setattr(SpmSplit, "_pieces", real)
    return bool(calls)


@pytest.mark.parametrize("path", ["library split", "merges table"])
@pytest.mark.parametrize("arch", ["llama", "gemma3", "phi3"])
def test_sentencepiece_vocabulary_encodes_like_transformers(arch, path, monkeypatch):
    """Both ways the tokenizer merges (the library's split, no merges table; or the tokenizers library's merges
    table, where the kernel library is not built) give transformers' own tokens, offsets included, on random
    texts over a vocabulary with tied scores and a repeated token (NaN scores have no order in Python's sort:
    ``test_the_split_merges_as_the_table_does`` covers them)."""
    from playground.engine.fast import kernels, spm_split

    if path == "library split" and not kernels.available():
        if kernels.compiler_present():
            pytest.fail("the kernel library did not build although a compiler is present")
        pytest.skip("no C++ compiler here")
    if path == "merges table":
        monkeypatch.setattr(spm_split.SpmSplit, "build", classmethod(lambda cls, tokens, scores: None))
    tokens, scores = _vocabulary(seed=3)
    scores[300:] = [-float(i // 40) for i in range(len(scores) - 300)]  # ties: the parts' lengths, then the place
    tokens.append(tokens[330])  # a repeated token: its last id and score, its first place
    scores.append(2.0)
    meta = _meta(arch, tokens, scores)
    ours = build_tokenizer(meta)._tokenizer
    assert _uses_library_split(ours, monkeypatch) == (path == "library split")
    theirs = _transformers_tokenizer(arch, meta)
    for text in _random_texts(tokens, 400, seed=11):
        expected = theirs.encode(text, add_special_tokens=False)
        got = ours.encode(text, add_special_tokens=False)
        assert (got.ids, got.offsets) == (expected.ids, expected.offsets), text


def test_the_split_merges_as_the_table_does(monkeypatch):
    """The library's split and the merges table it replaces give the same tokens where scores tie, are NaN (after
    every other) or -inf, and a token repeats (its last id and score, its first place)."""
    import numpy as np

    from playground.engine.fast import kernels, spm_split

    if not kernels.available():
        pytest.skip("the kernel library is not built: the table is the only way here")
    tokens, scores = _vocabulary(seed=6)
    scores[300:] = [-float(i // 25) for i in range(len(scores) - 300)]
    scores[330:340] = [float("nan")] * 10
    scores[340:345] = [-float("inf")] * 5
    tokens += [tokens[350], tokens[360]]
    scores += [3.0, float("nan")]
    meta = _meta("llama", tokens, scores)
    split = build_tokenizer(meta)._tokenizer
    monkeypatch.setattr(spm_split.SpmSplit, "build", classmethod(lambda cls, tokens, scores: None))
    table = build_tokenizer(meta)._tokenizer
    texts = _random_texts(tokens, 600, seed=13)
    assert [e.ids for e in split.encode_batch(texts)] == [e.ids for e in table.encode_batch(texts)]
    assert np.isnan(scores).sum() == 11 and len(tokens) - 1 in {i for e in split.encode_batch(texts) for i in e.ids}


@pytest.mark.parametrize("odd", ["a byte without its token", "a token joining a byte token"])
def test_a_vocabulary_the_split_would_not_reproduce_takes_the_merges_table(odd, monkeypatch):
    """The library's split is exact only where every byte has its fallback token and no token joins a byte token
    to another (the merges table would merge those); other vocabularies keep the table, and still encode as
    transformers does."""
    from playground.engine.fast import kernels

    if not kernels.available():
        pytest.skip("the kernel library is not built: the table is the only way here")
    tokens, scores = _vocabulary(seed=4)
    if odd == "a byte without its token":
        tokens[3 + 0xC3] = "<byte C3>"  # "ß", "😀" and "日本" start with other bytes; fallback then drops or unks
    else:
        tokens.append("<0x41>" + tokens[300])
        scores.append(1.0)
    meta = _meta("llama", tokens, scores)
    ours = build_tokenizer(meta)._tokenizer
    assert not _uses_library_split(ours, monkeypatch)
    theirs = _transformers_tokenizer("llama", meta)
    for text in _random_texts(tokens, 100, seed=12) + ["<0x41>" + tokens[300]]:
        assert ours.encode(text, add_special_tokens=False).ids == theirs.encode(text, add_special_tokens=False).ids


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
    monkeypatch.setitem(kernels._state, "c_functions", {"pg_pair_list": None})  # as where it is not exported
    assert kernels.pair_list(tokens, left, right) is None
    assert gguf_tokenizer._merges(tokens, vocab, scores) == compiled and len(compiled) > 100


def _byte_level_meta(pre: str, words: list[str], merges: list[str]) -> dict:
    from playground.engine.token_bytes import byte_chars

    tokens = [*byte_chars(), *words]
    return {"general.architecture": "llama", "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": pre,
            "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.merges": merges,
            "tokenizer.ggml.token_type": [1] * len(tokens)}


PRE_TEXTS = ["Hello World's HTTPServer don't", "1234567 and 12 apples/pears\r\n\n  x", "ÉCOLE naïve Ünïcode 日本語",
             "tabs\tand  double  spaces   ", "CamelCaseWords mixedCASE x-y_z!!", "line one\nLine Two\n\n"]


def test_each_pre_tokenizer_transformers_knows_splits_text_as_there():
    """Every ``tokenizer.ggml.pre`` the loader reads that transformers' GGUF conversion also reads (Llama 3,
    Qwen2, Mistral's Tekken, Falcon 3, ...) splits text into the same pieces there."""
    from transformers.integrations.gguf.gguf_tokenizer_mapping import (
        GGUF_PRE_TOKENIZER_SPLITS,
        convert_gguf_tokenizer,
    )

    from playground.engine.fast.gguf_tokenizer import PRE_TOKENIZERS

    shared = sorted(set(PRE_TOKENIZERS) & set(GGUF_PRE_TOKENIZER_SPLITS))
    assert {"llama-bpe", "qwen2", "tekken", "falcon3", "gpt-4o", "llama4", "dbrx", "qwen35"} <= set(shared)
    for pre in shared:
        meta = _byte_level_meta(pre, ["ab"], ["a b"])
        ours = build_tokenizer(meta)._tokenizer.pre_tokenizer
        theirs, _ = convert_gguf_tokenizer("llama", {"tokenizer_type": "gpt2", "pre_tokenizer_type": pre,
                                                     "tokens": meta["tokenizer.ggml.tokens"], "merges": ["a b"],
                                                     "token_type": meta["tokenizer.ggml.token_type"]})
        for text in PRE_TEXTS:
            assert [p for p, _ in ours.pre_tokenize_str(text)] == \
                [p for p, _ in theirs.pre_tokenizer.pre_tokenize_str(text)], (pre, text)


def _pieces(pre: str | None, text: str) -> list[str]:
    meta = _byte_level_meta(pre or "", ["ab"], ["a b"])
    if pre is None:
        del meta["tokenizer.ggml.pre"]
    return [p for p, _ in build_tokenizer(meta)._tokenizer.pre_tokenizer.pre_tokenize_str(text)]


def test_every_pre_tokenizer_name_llama_cpp_reads_splits_numbers_as_its_family_does():
    """The names llama.cpp's converter writes for families transformers has no GGUF table for ("gpt-2" for GPT-2
    itself, StarCoder's, Command-R's, StableLM 2's, DeepSeek's, ...) load, each with its family's split: GPT-2's
    keeps a digit run whole, SmolLM's, StarCoder's and DeepSeek Coder's split every digit, Llama 3's in threes,
    Qwen2's one by one, DeepSeek LLM's keeps the run apart from the space before it; a file that names none gets
    llama.cpp's default (digit runs cut in threes, punctuation runs apart from words)."""
    number = "Year 20245!"
    whole, single = ["Year", "Ġ20245", "!"], ["Year", "Ġ", "2", "0", "2", "4", "5", "!"]
    threes = ["Year", "Ġ", "202", "45", "!"]
    for pre, expected in (("gpt-2", whole), ("phi-2", whole), ("olmo", whole), ("starcoder", single),
                          ("command-r", single), ("refact", single), ("dbrx", threes), ("falcon-h1", threes),
                          ("stablelm2", single), ("megrez", single), ("gpt-4o", threes), (None, threes),
                          ("default", threes), ("deepseek-coder", single),
                          ("deepseek-llm", ["Year", "Ġ", "20245", "!"])):
        assert _pieces(pre, number) == expected, pre
    assert _pieces(None, "well ,done") == ["well", "Ġ", ",", "done"]
    assert _pieces("gpt-2", "well ,done") == ["well", "Ġ,", "done"]  # GPT-2's keeps the space on the comma


def test_an_unknown_pre_tokenizer_is_refused_by_name():
    with pytest.raises(UnsupportedModel, match="'no-such-split'"):
        build_tokenizer(_byte_level_meta("no-such-split", ["ab"], ["a b"]))


def test_llama3_and_tekken_take_a_piece_that_is_a_token_whole():
    """As llama.cpp (``ignore_merges``) and Llama 3's own tokenizer.json: a piece that is in the vocabulary is
    that token even where the merges do not reach it; GPT-2-style files merge it."""
    merges = ["a b", "ab c"]  # "abcd" is a token, but no merge makes it
    for pre, whole in (("llama-bpe", True), ("tekken", True), ("falcon3", True), ("gpt2", False),
                       ("qwen2", False)):
        tok = build_tokenizer(_byte_level_meta(pre, ["ab", "abc", "abcd"], merges))
        pieces = tok.convert_ids_to_tokens(tok("abcd", add_special_tokens=False)["input_ids"])
        assert pieces == (["abcd"] if whole else ["abc", "d"]), pre


def test_bos_follows_the_file_else_llama_cpp_s_default_for_the_family():
    """``add_bos_token`` as the file says; where it says nothing, BOS for Llama 3- and Tekken-style files (as
    llama.cpp adds it) and none for other byte-level ones."""
    for pre, flag, bos in (("llama-bpe", None, True), ("tekken", None, True), ("gpt2", None, False),
                           ("qwen2", None, False), ("llama-bpe", False, False), ("qwen2", True, True)):
        meta = _byte_level_meta(pre, ["ab", "<s>"], ["a b"])
        meta["tokenizer.ggml.bos_token_id"] = len(meta["tokenizer.ggml.tokens"]) - 1
        if flag is not None:
            meta["tokenizer.ggml.add_bos_token"] = flag
        ids = build_tokenizer(meta)("ab")["input_ids"]
        assert (ids[0] == meta["tokenizer.ggml.bos_token_id"]) == bos, (pre, flag)
