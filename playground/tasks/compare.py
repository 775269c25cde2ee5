"""Compare mode, Qt-free: column specs, sweeps, word-level divergence and per-column confidence.

A column is a plain dict: ``{"model": ID, <generation keys>...}``. Keys a column leaves out come from the
defaults (the CLI's options or the shared parameters panel), so duplicating a column and changing one key is the
whole "change one thing" workflow.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any

from playground.domain.text import GenerationRequest
from playground.errors import ParameterError

MIN_COLUMNS, MAX_COLUMNS = 2, 6
# column key -> type; "max_tokens" is accepted as the CLI's spelling of max_new_tokens
KEY_TYPES: dict[str, type] = {"model": str, "temperature": float, "top_p": float, "top_k": int,
                              "max_new_tokens": int, "repetition_penalty": float, "seed": int, "stop": str,
                              "no_repeat_ngram": int}
ALIASES = {"max_tokens": "max_new_tokens", "top-p": "top_p", "top-k": "top_k", "repetition-penalty":
           "repetition_penalty"}
SWEEP_KEYS = ("temperature", "top_p", "model", "seed", "top_k", "max_new_tokens", "repetition_penalty")
REQUEST_KEYS = ("temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty", "seed", "stop",
                "no_repeat_ngram")


def _convert(key: str, raw: Any) -> Any:
    kind = KEY_TYPES[key]
    if key == "seed" and (raw is None or str(raw).strip().lower() in {"", "none", "random"}):
        return None
    if key == "stop":
        if isinstance(raw, list | tuple):
            return tuple(str(s) for s in raw)
        # "|" separates stop sequences (a comma already separates keys); \n and \t are escapes
        return tuple(s.replace("\\n", "\n").replace("\\t", "\t") for s in str(raw).split("|") if s)
    try:
        return kind(raw) if kind is not int else int(str(raw).strip())
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{key}={raw!r} is not a valid {kind.__name__}") from exc


def normalise(column: dict[str, Any]) -> dict[str, Any]:
    """The column with canonical keys and typed values; raises ValueError naming an unknown key or bad value."""
    out: dict[str, Any] = {}
    for key, value in column.items():
        key = ALIASES.get(key.strip(), key.strip())
        if key not in KEY_TYPES:
            raise ParameterError(f"unknown column key {key!r}; use one of {', '.join(KEY_TYPES)}")
        out[key] = _convert(key, value)
    return out


_PAIR_BREAK = re.compile(r",|\s+(?=[A-Za-z_][\w-]*\s*=)")  # a comma, or spaces before the next key=


def parse_column(text: str) -> dict[str, Any]:
    """``"model=ID,temperature=0.7,seed=3"`` -> ``{"model": "ID", "temperature": 0.7, "seed": 3}``; settings
    separated by spaces alone (``"model=ID temperature=0"``) read the same (that had made the model "ID
    temperature=0")."""
    pairs: dict[str, Any] = {}
    for part in _PAIR_BREAK.split(text):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise ParameterError(f"column setting {part.strip()!r} must look like key=value")
        pairs[key.strip()] = value.strip()
    return normalise(pairs)


def format_column(column: dict[str, Any], skip_model: bool = False) -> str:
    """The inverse of ``parse_column`` (what the column editor shows)."""
    parts = []
    for key, value in column.items():
        if skip_model and key == "model":
            continue
        if key == "stop":
            value = "|".join(s.replace("\n", "\\n").replace("\t", "\\t") for s in value)
        parts.append(f"{key}={'random' if value is None else value}")
    return ",".join(parts)


def column_label(column: dict[str, Any], defaults: dict[str, Any] | None = None) -> str:
    """A short header: the model's last path part and the keys that differ from the defaults."""
    defaults = defaults or {}
    model = str(column.get("model") or defaults.get("model") or "?").rstrip("/").split("/")[-1]
    changed = [f"{k}={v}" for k, v in column.items() if k != "model" and defaults.get(k) != v]
    return " · ".join([model, *changed])


def resolve(column: dict[str, Any], defaults: dict[str, Any], source: str, prompt: str,
            top_logprobs: int = 5) -> tuple[str, GenerationRequest]:
    """(model id, request) for one column: its own keys override ``defaults``. Raises ValueError when invalid."""
    merged = {**normalise({k: v for k, v in defaults.items() if k in KEY_TYPES}), **normalise(column)}
    model = str(merged.get("model") or "")
    if not model:
        raise ParameterError("every column needs a model (model=ID)")
    kwargs = {k: merged[k] for k in REQUEST_KEYS if k in merged}
    request = GenerationRequest(prompt=prompt, source=source, n=1, top_logprobs=top_logprobs, **kwargs)
    request.validate()
    return model, request


# -- sweeps --------------------------------------------------------------------------------------------------------
def parse_values(key: str, text: str) -> list[Any]:
    """``"0, 0.5, 1"`` -> typed values for ``key`` (models are comma-separated ids)."""
    key = ALIASES.get(key, key)
    if key not in SWEEP_KEYS:
        raise ParameterError(f"cannot sweep {key!r}; pick one of {', '.join(SWEEP_KEYS)}")
    values = [_convert(key, v.strip()) for v in text.split(",") if v.strip()]
    if not values:
        raise ParameterError(f"type the values of {key} to compare, e.g. 0, 0.5, 1")
    return values


def sweep(base: dict[str, Any], key: str, values: list[Any]) -> list[dict[str, Any]]:
    """One column per value: ``base`` with ``key`` set to it (at most MAX_COLUMNS)."""
    key = ALIASES.get(key, key)
    if len(values) > MAX_COLUMNS:
        raise ParameterError(f"at most {MAX_COLUMNS} columns; got {len(values)} values")
    return [{**base, key: value} for value in values]


# -- divergence and confidence ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class WordDiff:
    """Where ``text`` departs from the reference: character spans in ``text`` and how alike the two are."""

    spans: tuple[tuple[int, int], ...]  # (start, end) character offsets of changed or inserted words
    first_divergence: int | None  # character offset in ``text`` of the first differing word (None = same)
    similarity: float  # difflib ratio over words, 1.0 = identical
    removed: int  # reference words with no counterpart in ``text``


_WORD = re.compile(r"\S+")


def diff_words(reference: str, text: str) -> WordDiff:
    """Word-level diff of ``text`` against ``reference`` (difflib over whitespace-separated words)."""
    ref = [m.group() for m in _WORD.finditer(reference)]
    words = list(_WORD.finditer(text))
    matcher = difflib.SequenceMatcher(None, ref, [m.group() for m in words], autojunk=False)
    spans: list[tuple[int, int]] = []
    removed = 0
    first: int | None = None
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        removed += i2 - i1
        if j2 > j1:
            spans.append((words[j1].start(), words[j2 - 1].end()))
        at = words[j1].start() if j1 < len(words) else len(text)
        first = at if first is None else min(first, at)
    ratio = matcher.ratio() if (ref or words) else 1.0
    return WordDiff(tuple(spans), first, ratio, removed)


def mean_logprob(logprobs: list[float]) -> float | None:
    """The mean token log-probability (higher = more confident); None without tokens."""
    return sum(logprobs) / len(logprobs) if logprobs else None


def column_stats(result: dict[str, Any]) -> dict[str, Any]:
    """Speed and confidence of one column from its ``complete --json`` object. The mean log-probability is None
    when the column has no tokens or any token lacks one (a remote server that provides none): a mean over some
    tokens only would not compare with the other columns."""
    tokens = result.get("tokens", [])
    lps = [t.get("logprob") for t in tokens]
    missing = any(lp is None for lp in lps)
    mean = None if missing else mean_logprob([float(lp) for lp in lps])
    timings = result.get("timings", {})
    return {"tokens": len(tokens), "tokens_per_s": float(timings.get("tokens_per_s", 0.0)),
            "ttft_s": float(timings.get("ttft_s", 0.0)), "mean_logprob": mean,
            "perplexity": math.exp(-mean) if mean is not None else None, "logprobs_missing": missing}


def stats_text(stats: dict[str, Any]) -> str:
    """One line for a column footer: ``12 tok · 14.2 tok/s · TTFT 0.31 s · mean log p -1.23 (ppl 3.4)``."""
    parts = [f"{stats['tokens']} tok", f"{stats['tokens_per_s']:.1f} tok/s", f"TTFT {stats['ttft_s']:.2f} s"]
    if stats.get("mean_logprob") is not None:
        parts.append(f"mean log p {stats['mean_logprob']:.2f} (ppl {stats['perplexity']:.1f})")
    elif stats.get("logprobs_missing"):
        parts.append("log p not provided by this server")
    return " · ".join(parts)


def most_confident(results: list[dict[str, Any] | None]) -> int | None:
    """Index of the column with the highest mean token log-probability (None when none has tokens)."""
    best, best_lp = None, -math.inf
    for i, result in enumerate(results):
        lp = column_stats(result)["mean_logprob"] if result else None
        if lp is not None and lp > best_lp:
            best, best_lp = i, lp
    return best
