"""What a sheet cell's prompt and answer are, shared by the local and remote fillers and the Sheet mode.

Also how an answer's text becomes a cell value (first line, trimmed; only the number in a numeric column) and how it
is compared with a known value: plain functions on strings, so every layer can use them.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

CONFIDENCE_HELP = ("Confidence = the product of the probabilities of the answer's tokens (greedy decoding, up to "
                   "the end of the line): the chance the model gives to writing exactly this answer. An empty "
                   "answer gets 0.")


@dataclass(frozen=True)
class CellPrompt:
    """One cell to complete: ``prefix`` (example blocks, shared by its group) + ``query`` (the target row).

    ``examples`` holds the prefix's blocks one by one, so the engine can drop the oldest when the context
    window is short; ``prefix == "".join(examples)``.
    """

    row: int
    column: int
    examples: tuple[str, ...]
    query: str

    @property
    def prefix(self) -> str:
        return "".join(self.examples)

    @property
    def text(self) -> str:
        return self.prefix + self.query


@dataclass(frozen=True)
class AnswerToken:
    text: str
    probability: float | None  # None: a remote server that gave no logprobs
    top: tuple[tuple[str, float], ...]  # (token text, probability), most likely first


@dataclass(frozen=True)
class Guess:
    """An alternative the model considered: the answer up to its least sure token, with another token there."""

    text: str
    probability: float


@dataclass(frozen=True)
class CellAnswer:
    """The model's value for one cell, with how sure it was."""

    index: int  # position in the prompts given to ``SheetFiller.fill``
    row: int
    column: int
    raw: str  # the completion's first line as generated
    value: str  # ``raw`` cleaned (trailing text dropped; for numeric columns only the number)
    confidence: float | None  # in [0, 1]; see CONFIDENCE_HELP. None: not provided by a remote server
    tokens: tuple[AnswerToken, ...]
    top: tuple[Guess, ...]  # alternatives at the least sure token, the chosen one first

    def to_json(self, column_name: str | None = None) -> dict[str, Any]:
        """The CLI's ``sheet fill --json`` shape for one cell."""
        return {"row": self.row, "column": column_name if column_name is not None else self.column,
                "value": self.value,
                "confidence": None if self.confidence is None else round(self.confidence, 6),
                "top": [{"text": g.text, "probability": round(g.probability, 6)} for g in self.top]}


@dataclass(frozen=True)
class FillResult:
    model: str
    answers: tuple[CellAnswer | None, ...]  # aligned with the prompts; None where stopped before the cell
    cancelled: bool
    seconds: float
    prompt_tokens: int  # tokens actually run through the model (shared prefixes counted once)
    engine: str = ""  # what ran the cells, e.g. "int4 · fused" (precision · path); "" when not known


CellFn = Callable[[CellAnswer], None]


def guesses(tokens: Sequence[AnswerToken], logprobs: Sequence[float]) -> tuple[Guess, ...]:
    """The top tokens at the answer's least sure position, each appended to the answer before it."""
    if not tokens:
        return ()
    weakest = min(range(len(tokens)), key=lambda i: tokens[i].probability or 0.0)
    head = "".join(t.text for t in tokens[:weakest])
    head_lp = sum(logprobs[:weakest])
    out = []
    for text, p in tokens[weakest].top:
        tail = text.split("\n", 1)[0]
        mark = "" if "\n" in text or weakest == len(tokens) - 1 else "…"
        out.append(Guess((head + tail).strip() + mark, math.exp(head_lp) * p))
    return tuple(out)


# -- answers -------------------------------------------------------------------------------------------------
_SCALES = {"thousand": 1e3, "k": 1e3, "million": 1e6, "mn": 1e6, "m": 1e6, "mio": 1e6, "billion": 1e9, "bn": 1e9,
           "b": 1e9, "trillion": 1e12, "tn": 1e12, "%": 1.0, "percent": 1.0}
_NUMBER = re.compile(
    r"^[~≈]?\s*(?P<sign>[-+−]?)\s*[$€£¥]?\s*(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s*(?P<scale>thousand|million|billion|trillion|mio|mn|bn|tn|percent|%|[kmb])\b|\s*(?P<pct>%))?",
    re.IGNORECASE)


@dataclass(frozen=True)
class Number:
    """A number read from an answer: ``mantissa`` as written (commas dropped), ``scale`` from its unit word."""

    mantissa: float
    scale: float = 1.0
    text: str = ""  # the matched text, e.g. "10.31 million"

    @property
    def value(self) -> float:
        return self.mantissa * self.scale


def parse_number(text: str) -> Number | None:
    """Read a leading number ("1,234.5", "$3", "10.31 million", "12%", "~4k"); None when the text is no number."""
    m = _NUMBER.match(text.strip())
    if not m:
        return None
    mantissa = float(m.group("num").replace(",", ""))
    if m.group("sign") in ("-", "−"):
        mantissa = -mantissa
    scale_word = (m.group("scale") or m.group("pct") or "").lower()
    return Number(mantissa, _SCALES.get(scale_word, 1.0), m.group(0).strip())


def is_numeric_column(values: list[str]) -> bool:
    """True when every non-empty value (and at least one) is a number with nothing but a unit after it."""
    seen = False
    for v in values:
        v = v.strip()
        if not v:
            continue
        n = parse_number(v)
        if n is None or n.text != v:
            return False
        seen = True
    return seen


def clean_answer(raw: str, numeric: bool = False) -> str:
    """The cell value in a completion: its first line, trimmed; for a numeric column only the number.

    Trailing text goes: "10.31 million people (2020)" -> "10.31 million"; "Paris." -> "Paris".
    """
    line = raw.strip().split("\n", 1)[0].strip()
    if numeric:
        n = parse_number(line)
        if n is not None:
            return n.text
    return line.rstrip(" .;,").strip()


def normalise(text: str) -> str:
    """Case-, accent-, punctuation- and article-insensitive form used for the "normalised match" score."""
    text = unicodedata.normalize("NFKD", text.strip().casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    n = parse_number(text)
    if n is not None and n.text == text:
        return repr(n.value)  # "1,000" == "1000" == "1 thousand"
    text = re.sub(r"[^\w\s]", " ", text)
    words = [w for w in text.split() if w not in ("the", "a", "an")]
    return " ".join(words)


def numbers_match(answer: str, truth: str, tolerance: float) -> bool | None:
    """Whether two numbers agree within ``tolerance`` (relative); None when ``truth`` is not a number.

    A unit word on only one side is read both ways: "10.31 million" matches a column of plain millions
    ("10.31") as well as of plain counts ("10310000").
    """
    t = parse_number(truth)
    if t is None:
        return None
    a = parse_number(answer)
    if a is None:
        return False
    for x in {a.value, a.mantissa}:
        for y in {t.value, t.mantissa}:
            if math.isclose(x, y, rel_tol=tolerance, abs_tol=1e-9):
                return True
    return False
