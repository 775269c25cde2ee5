"""Constrained decoding: the output must match a JSON schema, any JSON object, a regex, one of a list of choices or
a Lark grammar. At every step a mask over the vocabulary keeps only the tokens that can still lead to a match.

The grammar engine is llguidance (Microsoft's, used by vLLM, SGLang and llama.cpp): it builds each mask lazily
from the parser state (no index compiled up front, so a new schema costs about a millisecond, not seconds), covers
JSON Schema more fully than outlines-core's regex translation, and needs neither torch nor a compiler (xgrammar is a
C++ extension built against one torch version). Its cost per token is measured by ``bench/grammar_overhead.py``.

JSON is generated compactly (``", "`` and ``": "`` between items, no other whitespace): a small model given a
free choice of whitespace can pad forever.
"""

from __future__ import annotations

import json
import weakref
from typing import TYPE_CHECKING, Any

from playground.domain.text import Constraint
from playground.errors import ParameterError

if TYPE_CHECKING:
    import torch

JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
ANY_OBJECT = '{"type": "object"}'
_LL_TOKENIZERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def grammar_of(constraint: Constraint) -> str:
    """The llguidance grammar for ``constraint``; ParameterError when its spec is malformed."""
    from llguidance import LLMatcher

    kind, spec = constraint.kind, constraint.spec
    if kind in ("json_schema", "json_object"):
        text = spec if kind == "json_schema" else ANY_OBJECT
        try:
            schema = json.loads(text)
        except ValueError as exc:
            raise ParameterError(f"the JSON schema is not valid JSON ({exc})") from exc
        if not isinstance(schema, dict):
            raise ParameterError("the JSON schema must be a JSON object")
        return LLMatcher.grammar_from_json_schema(schema, overrides=JSON_OPTIONS)
    if kind == "regex":
        if not spec:
            raise ParameterError("the regex is empty")
        return LLMatcher.grammar_from_regex(spec)
    if kind == "choice":
        choices = parse_choices(spec)
        return LLMatcher.grammar_from_lark("start: " + " | ".join(json.dumps(c) for c in choices))
    return LLMatcher.grammar_from_lark(spec)


def parse_choices(spec: str) -> list[str]:
    try:
        choices = json.loads(spec)
    except ValueError as exc:
        raise ParameterError("choices must be a JSON list of strings") from exc
    if not isinstance(choices, list) or not choices or not all(isinstance(c, str) and c for c in choices):
        raise ParameterError("choices must be a non-empty list of non-empty strings")
    return choices


def ll_tokenizer(tokenizer: Any, eos_ids: frozenset[int]) -> Any:
    """llguidance's view of a transformers tokenizer (built once per tokenizer: ~0.3 s for a 49k vocabulary)."""
    cached = _LL_TOKENIZERS.get(tokenizer)
    if cached is None:
        import llguidance.hf

        try:
            cached = llguidance.hf.from_tokenizer(tokenizer, eos_token=sorted(eos_ids) or None)
        except ValueError as exc:
            raise ParameterError(f"constrained output needs a fast (Rust) tokenizer: {exc}") from exc
        _LL_TOKENIZERS[tokenizer] = cached
    return cached


class TokenMask:
    """One completion's constraint state: ``apply`` masks logits, ``advance`` consumes the chosen token."""

    def __init__(self, constraint: Constraint, tokenizer: Any, eos_ids: frozenset[int], vocab: int) -> None:
        import torch
        from llguidance import LLMatcher

        self._ll = ll_tokenizer(tokenizer, eos_ids)
        self._matcher = LLMatcher(self._ll, grammar_of(constraint), log_level=0)
        if self._matcher.is_error():
            raise ParameterError(f"invalid {constraint.kind.replace('_', ' ')}: {_first_line(self._matcher)}")
        self.vocab = vocab
        words = (self._ll.vocab_size + 31) // 32
        self._bits = torch.zeros(words, dtype=torch.int32)
        self._shifts = torch.arange(32, dtype=torch.int32)

    @property
    def done(self) -> bool:
        """True when the output is complete and nothing more may follow (only end-of-sequence is allowed)."""
        return self._matcher.is_stopped()

    def allowed(self) -> torch.Tensor:
        """A bool mask (vocab,) of the tokens allowed next."""
        import torch

        self._matcher.unsafe_compute_mask_ptr(self._bits.data_ptr(), self._bits.numel() * 4)
        if self._matcher.is_error():
            raise ParameterError(f"constrained output failed: {_first_line(self._matcher)}")
        bits = ((self._bits[:, None] >> self._shifts) & 1).flatten().bool()  # (words * 32,)
        if bits.numel() >= self.vocab:
            return bits[:self.vocab]
        return torch.cat([bits, torch.zeros(self.vocab - bits.numel(), dtype=torch.bool)])

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` (vocab,) with every token the constraint forbids at -inf."""
        return logits.masked_fill(~self.allowed(), float("-inf"))

    def advance(self, token: int) -> None:
        if not self._matcher.consume_token(token):
            raise ParameterError(f"constrained output failed: {_first_line(self._matcher)}")


def _first_line(matcher: Any) -> str:
    return (matcher.get_error() or "unknown error").strip().splitlines()[0][:300]


def check(constraint: Constraint) -> None:
    """Raise ParameterError now when ``constraint`` cannot compile (so a server answers 400 before queueing)."""
    from llguidance import LLMatcher

    grammar = grammar_of(constraint)
    error = LLMatcher.validate_grammar(grammar)
    if error:
        raise ParameterError(f"invalid {constraint.kind.replace('_', ' ')}: {error.strip().splitlines()[0][:300]}")
