"""The probe (the GPT-3 paper's occupation/gender probe): a template with one slot, a list of slot values, and
continuations whose probabilities are compared for each value.

    ProbeRequest("The {occupation} was a", ("nurse", "doctor"), (" man", " woman"))
    -> rows: log P(" man" | "The nurse was a"), log P(" woman" | ...), ... (value-major order)

Used by the Inspect tab, ``playground probe`` and their CSV export alike.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from playground.domain.inspect import ProbeRow
from playground.domain.jobs import Cancel
from playground.errors import ParameterError
from playground.store.records import Run

SLOT = re.compile(r"\{([^{}]*)\}")
MAX_VALUES = 200
MAX_CONTINUATIONS = 20
CHUNK = 32  # pairs scored between checks of the stop flag (batched 8 at a time inside)
# (text, continuation) pairs -> per-token logprobs of each continuation: the engine's scoring, batched.
Scorer = Callable[[Sequence[tuple[str, str]]], list[list[float]]]


def parse_values(text: str) -> tuple[str, ...]:
    """Comma-separated slot values, trimmed ("nurse, doctor" -> nurse, doctor)."""
    return tuple(v.strip() for v in text.split(",") if v.strip())


def parse_continuations(text: str) -> tuple[str, ...]:
    """Comma-separated continuations, kept exactly as typed: " man, woman" -> " man", " woman" (the leading space
    is part of the token a model predicts after a word)."""
    return tuple(c for c in text.split(",") if c.strip())


@dataclass(frozen=True)
class ProbeRequest:
    template: str
    values: tuple[str, ...]
    continuations: tuple[str, ...]

    def validate(self) -> None:
        names = set(SLOT.findall(self.template))
        if len(names) != 1:
            raise ParameterError("The template needs exactly one slot in braces, e.g. 'The {occupation} was a'"
                                 if not names else f"The template has {len(names)} different slots; use one")
        if not self.values:
            raise ParameterError("Give at least one slot value (comma-separated)")
        if not self.continuations:
            raise ParameterError("Give at least one continuation to compare (comma-separated, e.g. ' man, woman')")
        if len(self.values) > MAX_VALUES or len(self.continuations) > MAX_CONTINUATIONS:
            raise ParameterError(f"At most {MAX_VALUES} values and {MAX_CONTINUATIONS} continuations")

    @property
    def slot(self) -> str:
        return SLOT.findall(self.template)[0]

    def text_for(self, value: str) -> str:
        """The template with ``value`` in its slot (every occurrence)."""
        return self.template.replace("{" + self.slot + "}", value)

    def pairs(self) -> list[tuple[str, str]]:
        """(text, continuation) for every value × continuation, value-major."""
        return [(self.text_for(v), c) for v in self.values for c in self.continuations]


def engine_scorer(model: Any) -> Scorer:
    """``model``'s scoring (``engine/score.py``, batched; a remote model's echo): each continuation's per-token
    log-probabilities after its text."""
    def score(pairs: Sequence[tuple[str, str]]) -> list[list[float]]:
        from playground.domain.score import ScoreItem
        from playground.runtime.dispatch import run_score

        results = run_score(model, [ScoreItem(text, continuation) for text, continuation in pairs])
        return [[t.logprob or 0.0 for t in r.continuation] for r in results]

    return score


def run_probe(request: ProbeRequest, scorer: Scorer, cancel: Cancel | None = None,
              chunk: int = CHUNK) -> list[ProbeRow]:
    """Score every continuation after every filled template; one row each, value-major. ``cancel`` is checked
    between chunks of pairs: a stopped probe returns the rows it has."""
    request.validate()
    pairs = request.pairs()
    keys = [(v, c) for v in request.values for c in request.continuations]
    rows: list[ProbeRow] = []
    for start in range(0, len(pairs), chunk):
        if cancel is not None and cancel.is_set():
            break
        scores = scorer(pairs[start:start + chunk])
        rows += [ProbeRow(v, c, float(sum(s))) for (v, c), s in zip(keys[start:start + chunk], scores, strict=True)]
    return rows


def shares(rows: Sequence[ProbeRow]) -> list[float]:
    """Each row's probability relative to the other continuations of its value (they sum to 1 per value): what
    the bar chart shows, since raw probabilities of short continuations are small."""
    totals: dict[str, float] = {}
    for r in rows:
        totals[r.value] = totals.get(r.value, 0.0) + math.exp(r.logprob)
    return [math.exp(r.logprob) / totals[r.value] if totals[r.value] > 0 else 0.0 for r in rows]


def probe_json(rows: Sequence[ProbeRow]) -> dict[str, Any]:
    """The CLI's ``probe --json`` object."""
    return {"rows": [{"value": r.value, "continuation": r.continuation, "logprob": r.logprob} for r in rows]}


def probe_csv(rows: Sequence[ProbeRow]) -> str:
    """value, continuation, logprob, probability, share (of the value's continuations): one line per row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["value", "continuation", "logprob", "probability", "share"])
    for r, share in zip(rows, shares(rows), strict=True):
        writer.writerow([r.value, r.continuation, f"{r.logprob:.6f}", f"{math.exp(r.logprob):.6g}", f"{share:.4f}"])
    return out.getvalue()


def rows_of(run: Run) -> list[ProbeRow]:
    """A saved probe run's rows."""
    return [ProbeRow(str(r["value"]), str(r["continuation"]), float(r["logprob"]))
            for r in run.outputs.get("rows", []) if isinstance(r, dict)]


def probe_run(request: ProbeRequest, rows: Sequence[ProbeRow], model_id: str, seconds: float = 0.0,
              status: str = "done", error: str | None = None) -> Run:
    """The session record of a probe: template, values, continuations and every row's log-probability."""
    inputs = {"kind": "probe", "template": request.template, "values": list(request.values),
              "continuations": list(request.continuations),
              "description": f"Probe: {request.template}"}
    return Run(mode="inspect", model_id=model_id, params={"scoring": "sum of token logprobs"}, inputs=inputs,
               outputs=probe_json(rows) if rows else {}, timings={"seconds": round(seconds, 3)}, status=status,
               error=error)
