"""Few-shot accuracy against k on the user's own table: the lecture's GPT-3 plot, for one column.

Leave-one-out with shared examples: the complete rows are shuffled once (seeded); for each k, every query row
is hidden in turn and the model sees the first k rows of the shuffle other than itself. Queries are taken from
the end of the shuffle, so on a table larger than ``k + queries`` all queries of one k share the same examples
(and so one prompt prefix, which the engine prefills once).
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass

from playground.domain.sheet import CellPrompt, is_numeric_column, normalise, numbers_match
from playground.errors import KnownError
from playground.tasks.sheet import Sheet, cell_prompt, safe_cell

DEFAULT_SHOTS = (0, 1, 2, 4, 8)
DEFAULT_QUERIES = 24  # per k: enough for a readable curve, few enough to finish in seconds on a CPU
DEFAULT_TOLERANCE = 0.05  # relative, for "numeric within tolerance"


def parse_shots(text: str) -> tuple[int, ...]:
    """"0,1,2,4,8" -> (0, 1, 2, 4, 8), sorted and unique; raises KnownError on anything else."""
    try:
        shots = sorted({int(part) for part in text.replace(" ", "").split(",") if part})
    except ValueError as exc:
        raise KnownError(f"Shots must be whole numbers separated by commas, e.g. 0,1,2,4,8 (got {text!r})") from exc
    if not shots or shots[0] < 0:
        raise KnownError("Shots must be one or more numbers of example rows, 0 or more")
    return tuple(shots)


@dataclass(frozen=True)
class EvalCase:
    k: int
    row: int
    truth: str
    prompt: CellPrompt


@dataclass(frozen=True)
class EvalPlan:
    column: int
    column_name: str
    shots: tuple[int, ...]  # the ks this table can run (k needs k other complete rows)
    cases: tuple[EvalCase, ...]
    numeric: bool  # the column holds numbers: the numeric score applies
    notes: tuple[str, ...]  # ks dropped and why

    @property
    def prompts(self) -> list[CellPrompt]:
        return [c.prompt for c in self.cases]


def plan_eval(sheet: Sheet, column: str | int, shots: tuple[int, ...] = DEFAULT_SHOTS,
              max_queries: int = DEFAULT_QUERIES, seed: int = 0) -> EvalPlan:
    """The prompts that measure accuracy on ``column`` for each k; raises KnownError when it cannot run."""
    col = _column_index(sheet, column)
    if len(sheet.columns) < 2:
        raise KnownError("Evaluation needs at least two columns: one to ask about and one to ask from")
    complete = [r for r in range(len(sheet.rows)) if sheet.is_complete(r)]
    if len(complete) < 2:
        raise KnownError("Evaluation needs at least two complete rows (every cell filled) with known values")
    order = complete[:]
    random.Random(seed).shuffle(order)
    queries = order[-max_queries:] if max_queries > 0 else order
    known = tuple(c for c in range(len(sheet.columns)) if c != col)
    runnable = tuple(k for k in shots if k <= len(complete) - 1)
    notes = tuple(f"k = {k} skipped: the table has only {len(complete)} complete rows"
                  for k in shots if k not in runnable)
    if not runnable:
        raise KnownError(f"No k can run: the table has {len(complete)} complete rows")
    cases = []
    for k in runnable:
        for r in queries:
            examples = [x for x in order if x != r][:k]
            cases.append(EvalCase(k, r, sheet.rows[r][col], cell_prompt(sheet, r, col, examples, known)))
    numeric = is_numeric_column([sheet.rows[r][col] for r in complete])
    return EvalPlan(col, sheet.columns[col], runnable, tuple(cases), numeric, notes)


@dataclass(frozen=True)
class EvalPoint:
    """Accuracy at one k for one model, each score a fraction of ``n`` queries."""

    model: str
    k: int
    n: int
    exact: float
    normalised: float
    numeric: float | None  # None when the column is not numeric

    def as_dict(self) -> dict[str, object]:
        return {"model": self.model, "k": self.k, "n": self.n, "exact": round(self.exact, 4),
                "normalised": round(self.normalised, 4),
                "numeric": None if self.numeric is None else round(self.numeric, 4)}


def score(plan: EvalPlan, model: str, answers: list[str | None],
          tolerance: float = DEFAULT_TOLERANCE) -> list[EvalPoint]:
    """Accuracy per k from ``answers`` (aligned with ``plan.cases``; None = not answered, e.g. stopped).

    exact: the same text after trimming; normalised: ignoring case, accents, punctuation, articles and number
    formatting; numeric: within ``tolerance`` (relative) of the true number.
    """
    points = []
    for k in plan.shots:
        rows = [(c, a) for c, a in zip(plan.cases, answers, strict=True) if c.k == k and a is not None]
        if not rows:
            continue
        n = len(rows)
        exact = sum(a.strip() == c.truth.strip() for c, a in rows) / n
        norm = sum(normalise(a) == normalise(c.truth) for c, a in rows) / n
        numeric = (sum(bool(numbers_match(a, c.truth, tolerance)) for c, a in rows) / n) if plan.numeric else None
        points.append(EvalPoint(model, k, n, exact, norm, numeric))
    return points


def points_to_csv(points: list[EvalPoint]) -> str:
    """model, k, n, exact, normalised, numeric: one row per point."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["model", "k", "n", "exact", "normalised", "numeric"])
    for p in points:
        writer.writerow([safe_cell(p.model), p.k, p.n, f"{p.exact:.4f}", f"{p.normalised:.4f}",
                         "" if p.numeric is None else f"{p.numeric:.4f}"])
    return out.getvalue()


def _column_index(sheet: Sheet, column: str | int) -> int:
    if isinstance(column, int):
        if not 0 <= column < len(sheet.columns):
            raise KnownError(f"No column {column}")
        return column
    for i, name in enumerate(sheet.columns):
        if name == column:
            return i
    folded = [i for i, name in enumerate(sheet.columns) if name.casefold() == column.casefold()]
    if len(folded) == 1:
        return folded[0]
    raise KnownError(f"No column named {column!r}; the columns are: {', '.join(sheet.columns)}")
