"""A transformers tokenizer built straight from a GGUF file's ``tokenizer.*`` metadata, in a fraction of a second.

transformers' own GGUF path builds the same tokenizer through its slow-tokenizer classes (4-9 s for SmolLM2,
15-35 s for Gemma-3, measured here). The pieces, per ``tokenizer.ggml.model``:
- ``gpt2``: byte-level BPE; the vocabulary and merges are in the file; the text is split by the regexes of
  ``tokenizer.ggml.pre`` (every name llama.cpp's loader maps to one of these splits; the patterns are the
  models' own ``tokenizer.json`` ones: GPT-2's, digits one by one then GPT-2's for ``smollm`` and StarCoder's,
  Llama 3's, Qwen2's, Tekken's, GPT-4o's, DeepSeek's; llama.cpp's ``default`` for a file that names none), then
  mapped to bytes.
- ``llama``: SentencePiece BPE with byte fallback; the file has scores, not merges, so merges are rebuilt from
  the vocabulary: every split of a token into two tokens, best merged token first (by score; Gemma's scores do
  not follow its merge order, its token order does), as transformers does. Spaces become ``▁``; a prefix space
  is added unless ``add_space_prefix`` is false (Gemma adds none, Phi-3 prepends through its normalizer). Where
  the kernel library is built, those merges run there (``spm_split``: the same tokens, offsets included) and the
  tokenizers library gets no merges table, whose build was ~0.75 s of Gemma's first load.
Control tokens become special added tokens, user-defined ones plain added tokens (matched whole, as llama.cpp
does); BOS/EOS are added as ``add_bos_token`` / ``add_eos_token`` say; the chat template comes along.
"""

from __future__ import annotations

import re
from itertools import repeat
from typing import Any

import numpy as np

from playground.engine.fast.spm_split import SpmSplit, nul_joined
from playground.engine.token_bytes import byte_chars
from playground.errors import DamagedModel, UnsupportedModel, first_line, library_panic

_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
           r"|\s+(?!\S)|\s+")
_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
          r"|\s+(?!\S)|\s+")
# Mistral's Tekken (Mistral Nemo, Ministral, Pixtral: llama-architecture files): case-aware words, digits one by one
_TEKKEN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
           r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
           r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# Phi-4-mini, Llama 4 (o200k-style): Tekken's words with the English contractions attached, digits in threes
_GPT4O = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
          r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
          r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# Qwen3.5: Qwen2's, with combining marks kept in their words
_QWEN35 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"
           r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# DeepSeek LLM / Coder (llama-architecture files): newlines apart, then letter runs (LLM: an explicit list of
# cased-letter ranges), punctuation runs, CJK runs and digits, as llama.cpp lists them
_DEEPSEEK_LETTERS = (r"\s?[A-Za-z\x{b5}\x{c0}-\x{d6}\x{d8}-\x{f6}\x{f8}-\x{1ba}\x{1bc}-\x{1bf}\x{1c4}-\x{293}\x{295}-"
                     r"\x{2af}\x{370}-\x{373}\x{376}\x{377}\x{37b}-\x{37d}\x{37f}\x{386}\x{388}-\x{38a}\x{38c}\x{38e}-"
                     r"\x{3a1}\x{3a3}-\x{3f5}\x{3f7}-\x{481}\x{48a}-\x{52f}\x{531}-\x{556}\x{10a0}-\x{10c5}\x{13a0}-"
                     r"\x{13f5}\x{13f8}-\x{13fd}\x{1c90}-\x{1cba}\x{1cbd}-\x{1cbf}\x{1d00}-\x{1d2b}\x{1d6b}-\x{1d77}"
                     r"\x{1d79}-\x{1d9a}\x{1e00}-\x{1f15}\x{1f18}-\x{1f1d}\x{1f20}-\x{1f45}\x{1f48}-\x{1f4d}\x{1f50}-"
                     r"\x{1f57}\x{1f59}\x{1f5b}\x{1f5d}\x{1f5f}-\x{1f7d}\x{1f80}-\x{1fb4}\x{1fb6}-\x{1fbc}\x{1fbe}"
                     r"\x{1fc2}-\x{1fc4}\x{1fc6}-\x{1fcc}\x{1fd0}-\x{1fd3}\x{1fd6}-\x{1fdb}\x{1fe0}-\x{1fec}\x{1ff2}-"
                     r"\x{1ff4}\x{1ff6}-\x{1ffc}\x{2102}\x{2107}\x{210a}-\x{2113}\x{2115}\x{2119}-\x{211d}\x{2124}"
                     r"\x{2126}\x{2128}\x{212a}-\x{212d}\x{212f}-\x{2134}\x{2139}\x{213c}-\x{213f}\x{2145}-\x{2149}"
                     r"\x{214e}\x{2183}\x{2184}\x{2c00}-\x{2c7b}\x{2c7e}-\x{2ce4}\x{2ceb}-\x{2cee}\x{2cf2}\x{2cf3}"
                     r"\x{a640}-\x{a66d}\x{a680}-\x{a69b}\x{a722}-\x{a76f}\x{a771}-\x{a787}\x{a78b}-\x{a78e}\x{ab70}-"
                     r"\x{abbf}\x{fb00}-\x{fb06}\x{fb13}-\x{fb17}\x{ff21}-\x{ff3a}\x{ff41}-\x{ff5a}\x{10400}-\x{1044f}"
                     r"\x{104b0}-\x{104d3}\x{104d8}-\x{104fb}\x{10c80}-\x{10cb2}\x{10cc0}-\x{10cf2}\x{118a0}-\x{118df}"
                     r"\x{1e900}-\x{1e943}]+")
_DEEPSEEK_PUNCT = r"\s?[!-/:-~\x{ff01}-\x{ff0f}\x{ff1a}-\x{ff5e}\x{2018}-\x{201f}\x{3000}-\x{3002}]+"
_CJK = r"[\x{4e00}-\x{9fa5}\x{800}-\x{4e00}\x{ac00}-\x{d7ff}]+"
# llama.cpp's split for a byte-level file that names no pre-tokenizer (or "default"): punctuation runs, GPT-2's
# words, digit runs, then digits in threes
_DEFAULT = [r"[\p{P}\$\+<=>\^~\|]+", r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)",
            r"\p{N}+", r"[0-9][0-9][0-9]"]
# tokenizer.ggml.pre -> the regexes applied in turn (each splits the pieces the previous one left): every name
# llama.cpp's vocabulary loader maps to one of these splits (its converter writes them: "gpt-2" for GPT-2 itself,
# "smollm", "starcoder", "command-r" and others for the digit-by-digit one, ...)
_SPLITS: dict[tuple[str, ...], list[str]] = {
    ("default",): _DEFAULT,
    ("gpt2", "gpt-2", "phi-2", "mpt", "olmo", "jais", "trillion", "gigachat", "a.x-4.0", "mellum", "exaone4",
     "granite-docling"): [_GPT2],
    ("smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b", "mellum2"): [r"\p{N}", _GPT2],
    ("llama3", "llama-bpe", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano",
     "smaug-bpe", "dbrx"): [_LLAMA3],
    ("qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open"): [_QWEN2],
    ("qwen35",): [_QWEN35],
    ("deepseek-llm",): [r"[\r\n]", _DEEPSEEK_LETTERS, _DEEPSEEK_PUNCT, r"\s+$", _CJK, r"\p{N}+"],
    ("deepseek-coder",): [r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", _CJK, r"\p{N}"],
    ("tekken",): [_TEKKEN],
    ("gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"): [_GPT4O],
}
PRE_TOKENIZERS = {name: splits for names, splits in _SPLITS.items() for name in names}
# pre-tokenizers whose pieces, when one is a token, are that token without merging (llama.cpp's ``ignore_merges``,
# as Llama 3's and Tekken's tokenizer.json say: merges alone do not always reach a word that is in the vocabulary);
# llama.cpp also adds BOS for these where the file does not say
WHOLE_PIECES = frozenset({"llama3", "llama-bpe", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                          "jina-v5-nano", "tekken"})
CONTROL, USER_DEFINED = 3, 4


def build_tokenizer(meta: dict[str, Any]) -> Any:
    """A ``PreTrainedTokenizerFast`` for the file whose metadata is ``meta``; UnsupportedModel when it cannot,
    DamagedModel where the tokenizers library refuses the file's vocabulary (a merge making a token the vocabulary
    lacks) or panics on it."""
    try:
        return _build(meta)
    except BaseException as exc:
        if library_panic(exc) or type(exc) is Exception:  # the library's own errors are bare Exceptions
            raise DamagedModel(f"its tokenizer cannot be built from the file's vocabulary: {first_line(exc)}") \
                from exc
        raise


def _build(meta: dict[str, Any]) -> Any:
    kind = meta.get("tokenizer.ggml.model")
    tokens: list[str] | None = meta.get("tokenizer.ggml.tokens")
    if not tokens:
        raise UnsupportedModel("the GGUF file has no tokenizer vocabulary")
    types = meta.get("tokenizer.ggml.token_type")
    types = np.asarray(types) if types is not None else np.ones(len(tokens), dtype=np.int32)
    arch = str(meta.get("general.architecture", ""))
    if kind == "gpt2":
        backend, vocab = _byte_level(meta, tokens)
        # a file that does not say: BOS for the Llama 3 and Tekken families (llama.cpp's default for them)
        add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", meta.get("tokenizer.ggml.pre") in WHOLE_PIECES))
    elif kind == "llama":
        backend, vocab = _sentencepiece(meta, tokens, arch)
        add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", True))
    else:
        raise UnsupportedModel(f"GGUF tokenizer model {kind!r} is not supported (gpt2 and llama are)")
    add_eos = bool(meta.get("tokenizer.ggml.add_eos_token", False))
    special = {name: tokens[int(meta[f"tokenizer.ggml.{key}"])] for name, key in
               (("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("unk_token", "unknown_token_id"),
                ("pad_token", "padding_token_id"))
               if f"tokenizer.ggml.{key}" in meta and 0 <= int(meta[f"tokenizer.ggml.{key}"]) < len(tokens)}
    control, user = _added_tokens(tokens, types, vocab if kind == "llama" else None, kind == "gpt2")
    # transformers' __init__ reads every added token back from the backend twice (0.12 s for Gemma's 6,384), so
    # only the named special tokens are added before it (it adds those it does not find), the rest after.
    named = set(special.values())
    if first := [t for t in control if t.content in named]:
        backend.add_special_tokens(first)
    wrapped = _wrap(backend, special, add_bos, add_eos, meta.get("tokenizer.chat_template"))
    if rest := [t for t in control if t.content not in named]:
        backend.add_special_tokens(rest)
    if user:
        backend.add_tokens(user)
    return wrapped


# ---------------------------------------------------------------- models ------------------------------------------


def _byte_level(meta: dict[str, Any], tokens: list[str]) -> tuple[Any, dict[str, int]]:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    pre = str(meta.get("tokenizer.ggml.pre") or "default")
    if pre not in PRE_TOKENIZERS:
        raise UnsupportedModel(f"GGUF pre-tokenizer {pre!r} is not supported (the loader reads GPT-2's, Llama 3's, "
                               f"Qwen2's, SmolLM's, Tekken's, GPT-4o's and DeepSeek's splits under the "
                               f"{len(PRE_TOKENIZERS)} names llama.cpp gives them, e.g. gpt-2, llama-bpe, qwen2, "
                               f"smollm, tekken, gpt-4o)")
    merges = meta.get("tokenizer.ggml.merges")
    if not merges:
        raise UnsupportedModel("the GGUF byte-level tokenizer has no merges")
    # Files store byte-level tokens already spelled in the byte alphabet: one search over them all says so (a
    # per-token set test took 50 ms on a 151k vocabulary); otherwise respell those that are not.
    if _OUTSIDE_BYTE_ALPHABET.search("".join(tokens)) is None:
        spelled = tokens
    else:
        spelled = [t if set(t) <= _BYTE_ALPHABET else "".join(_BYTE_CHARS[b] for b in t.encode("utf-8"))
                   for t in tokens]
    vocab = {t: i for i, t in enumerate(spelled)}
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs, dropout=None, continuing_subword_prefix="",
                               end_of_word_suffix="", fuse_unk=False, ignore_merges=pre in WHOLE_PIECES))
    splits = [pre_tokenizers.Split(Regex(p), behavior="isolated") for p in PRE_TOKENIZERS[pre]]
    tok.pre_tokenizer = pre_tokenizers.Sequence([*splits,
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    return tok, vocab


def _sentencepiece(meta: dict[str, Any], tokens: list[str], arch: str) -> tuple[Any, dict[str, int]]:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    gemma = arch.startswith("gemma")
    if gemma:  # runs of spaces are stored as real spaces; the text they match is spelled with "▁"
        tokens = ["\u2581" * len(t) if " " in t and not t.strip() else t for t in tokens]
    vocab = {t: i for i, t in enumerate(tokens)}
    if gemma:
        scores = -np.arange(len(tokens), dtype=np.float64)
    else:
        if meta.get("tokenizer.ggml.scores") is None:
            raise UnsupportedModel("the GGUF SentencePiece tokenizer has no scores")
        scores = np.asarray(meta["tokenizer.ggml.scores"], dtype=np.float64)
        if scores.shape != (len(tokens),):
            raise UnsupportedModel(f"the GGUF tokenizer has {scores.size} scores for {len(tokens)} tokens")
    unk_id = int(meta.get("tokenizer.ggml.unknown_token_id", 0))
    unk = tokens[unk_id] if 0 <= unk_id < len(tokens) else None
    splitter = SpmSplit.build(tokens, scores)  # the merges run in the library: no merges table to build
    merges = [] if splitter is not None else _merges(tokens, vocab, scores)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, fuse_unk=True, byte_fallback=True,
                               unk_token=unk, ignore_merges=splitter is not None))
    steps = [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
    if gemma:
        tok.normalizer = normalizers.Replace(" ", "\u2581")
        tok.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
    elif arch == "phi3":
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
        steps.append(decoders.Strip(content=" ", left=1))
    else:
        prefix = bool(meta.get("tokenizer.ggml.add_space_prefix", True))
        scheme = "first" if prefix else "never"
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme=scheme, split=False)
        if prefix:
            steps.append(decoders.Strip(content=" ", left=1))
    tok.decoder = decoders.Sequence(steps)
    if splitter is not None:
        split = pre_tokenizers.PreTokenizer.custom(splitter)
        tok.pre_tokenizer = split if tok.pre_tokenizer is None else pre_tokenizers.Sequence([tok.pre_tokenizer, split])
    return tok, vocab


def _merges(tokens: list[str], vocab: dict[str, int], scores: np.ndarray) -> list[tuple[str, str]]:
    """Every split of a token into two vocabulary tokens, best first: by the merged token's score (higher first),
    then longer left part, then longer right part, then the token's place (the order transformers'
    ``generate_merges`` gives, so both tokenizers agree). A repeated token counts once, at its first place, with
    its last score and id (as a dict built in order keeps it)."""
    from playground.engine.fast import kernels

    lefts, rights = _compiled_merges(tokens, scores) or _ranked_merges(tokens, vocab, scores)
    pairs = kernels.pair_list(tokens, lefts, rights)  # Gemma's 515k: 0.07-0.10 s; 0.21 s through map and zip
    if pairs is None:
        pairs = list(zip(map(tokens.__getitem__, lefts.tolist()), map(tokens.__getitem__, rights.tolist()),
                         strict=True))
    return pairs


def _ranked_merges(tokens: list[str], vocab: dict[str, int], scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_merges``' ranked (left id, right id) pairs through Python and numpy (where the library is not built)."""
    order = dict(zip(tokens, scores.tolist(), strict=True))
    words = list(order)
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    lefts, rights, where, cut = _splits(words, lengths, vocab)
    score = np.fromiter(order.values(), dtype=np.float64, count=len(order))[where]
    # (word, cut) names a split, so the parts' ids after the word's place never decide: not sorted on
    ranked = np.lexsort((where, cut - lengths[where], -cut, -score))
    return lefts[ranked], rights[ranked]


Splits = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # left id, right id, word index, cut (characters)


def _splits(words: list[str], lengths: np.ndarray, vocab: dict[str, int]) -> Splits:
    """Every (left, right) vocabulary pair a word splits into, one cut position at a time over every word long
    enough, lookups through map() into arrays (a nested Python loop took ~1 s on Gemma's vocabulary)."""
    get = vocab.get
    parts: list[Splits] = []
    for i in range(1, int(lengths.max(initial=0))):
        ws = np.flatnonzero(lengths > i)
        left = np.fromiter(map(get, [words[w][:i] for w in ws.tolist()], repeat(-1)), dtype=np.int64, count=len(ws))
        ws, left = ws[left >= 0], left[left >= 0]
        right = np.fromiter(map(get, [words[w][i:] for w in ws.tolist()], repeat(-1)), dtype=np.int64, count=len(ws))
        both = right >= 0
        parts.append((left[both], right[both], ws[both], np.full(int(both.sum()), i, dtype=np.int64)))
    if not parts:
        return tuple(np.zeros(0, dtype=np.int64) for _ in range(4))  # type: ignore[return-value]
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))  # type: ignore[return-value]


def _compiled_merges(tokens: list[str], scores: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``_merges``' ranked (left id, right id) pairs by the library's ``bpe_merges`` (Gemma's 262k tokens: ~2M
    lookups and 515k merges, ~0.6 s in Python and numpy); None where it is not built or a token holds a NUL (the
    strings travel NUL-joined)."""
    from playground.engine.fast import kernels

    text = nul_joined(tokens)
    if text is None or not kernels.available():
        return None
    import torch

    joined = torch.frombuffer(bytearray(text), dtype=torch.uint8)
    lefts, rights = torch.ops.playground.bpe_merges(joined, torch.from_numpy(np.ascontiguousarray(scores)))
    return lefts.numpy(), rights.numpy()


# ---------------------------------------------------------------- special tokens and wrapper ----------------------


def _added_tokens(tokens: list[str], types: np.ndarray, vocab: dict[str, int] | None,
                  byte_level: bool) -> tuple[list[Any], list[Any]]:
    """Control tokens as special added tokens, user-defined ones as plain added tokens (both matched whole)."""
    from tokenizers import AddedToken

    alphabet = _BYTE_ALPHABET if byte_level else None
    control = [AddedToken(tokens[i], normalized=False, special=True) for i in np.flatnonzero(types == CONTROL)
               if alphabet is None or set(tokens[i]) <= alphabet]
    user = [AddedToken(tokens[i], normalized=False, special=False) for i in np.flatnonzero(types == USER_DEFINED)
            if vocab is None or tokens[i] in vocab]
    return control, user


def _wrap(backend: Any, special: dict[str, str], add_bos: bool, add_eos: bool, template: str | None) -> Any:
    from transformers import PreTrainedTokenizerFast

    kwargs: dict[str, Any] = dict(special, add_bos_token=add_bos, add_eos_token=add_eos,
                                  clean_up_tokenization_spaces=False)
    if template:
        kwargs["chat_template"] = template
    # Handing the backend over as ``tokenizer_object`` would deep-copy it (1.2 s for Gemma's); a backend already
    # set on the instance is used as is (what transformers' own model tokenizers do). The BOS/EOS post-processor
    # is set by __init__ from add_bos_token / add_eos_token.
    wrapped = PreTrainedTokenizerFast.__new__(PreTrainedTokenizerFast)
    wrapped._tokenizer = backend
    wrapped.__init__(**kwargs)
    return wrapped


_BYTE_CHARS = byte_chars()
_BYTE_ALPHABET = frozenset(_BYTE_CHARS)
_OUTSIDE_BYTE_ALPHABET = re.compile("[^" + re.escape("".join(_BYTE_CHARS)) + "]")
