"""The Sheet tab's state as JSON, for session drafts and run records, and the way back.

A draft (``sheet_to_dict``) is the table plus what the tab shows around it::

    {"version": 1,
     "header": ["Country", "Capital"], "rows": [["France", "Paris"], ["Peru", "Lima"]],
     "instructions": {"Capital": "in French"},
     "marks": [{"row": 1, "column": 1, "mark": "model", "value": "Lima", "raw": "Lima", "confidence": 0.83,
                "top": [{"text": "Lima", "probability": 0.83}, ...], "tokens": [{"text": " Lima", ...}]}],
     "threshold": 0.5,
     "eval": {"column": "Capital", "shots": "0,1,2,4,8", "tolerance": 0.05, "metric": "normalised"},
     "chart": {"title": "Accuracy on 'Capital'", "points": [{"model": ..., "k": 0, "n": 24, ...}]}}

``marks`` is sparse: a cell without one is typed by the user. ``model`` / ``unsure`` cells are model output (which
of the two follows from the threshold; the mark is written for readers of the JSON), ``accepted`` cells are model
output the user kept as their own. A run record's ``inputs.sheet`` holds the table part only (``table_to_dict``).

``sheet_from_dict`` reads drafts from older versions or hand-edited / hostile files: it never raises on any JSON
value, drops what it cannot read, and falls back to the default empty sheet when there is no usable table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from playground.domain.sheet import AnswerToken, CellAnswer, Guess
from playground.tasks.sheet import MAX_COLUMNS, MAX_ROWS, Sheet, unique_names
from playground.tasks.sheet_eval import DEFAULT_SHOTS, DEFAULT_TOLERANCE, EvalPoint

if TYPE_CHECKING:
    from playground.store.records import Run

VERSION = 1
DEFAULT_THRESHOLD = 0.5
METRIC_KEYS = ("normalised", "exact", "numeric")
MARKS = ("model", "unsure", "accepted")


def empty_sheet() -> Sheet:
    """The grid a new session starts with: two unnamed columns, three blank rows."""
    return Sheet(["Column 1", "Column 2"], [["", ""] for _ in range(3)])


@dataclass
class SheetState:
    """Everything the Sheet tab shows, Qt-free. ``sheet.rows`` holds every value, model output included."""

    sheet: Sheet = field(default_factory=empty_sheet)
    answers: dict[tuple[int, int], CellAnswer] = field(default_factory=dict)  # model output not yet accepted
    accepted: set[tuple[int, int]] = field(default_factory=set)  # model output the user kept as typed
    threshold: float = DEFAULT_THRESHOLD
    eval_column: str = ""
    shots: str = ",".join(map(str, DEFAULT_SHOTS))
    tolerance: float = DEFAULT_TOLERANCE
    metric: str = "normalised"
    chart_title: str = ""
    points: list[EvalPoint] = field(default_factory=list)


# -- writing -------------------------------------------------------------------------------------------------
def answer_to_dict(answer: CellAnswer) -> dict[str, Any]:
    """One model cell: where, what, how sure, the alternatives at its least sure token and its tokens."""
    return {"row": answer.row, "column": answer.column, "value": answer.value, "raw": answer.raw,
            "confidence": _round(answer.confidence),  # null: not provided by a remote server
            "top": [{"text": g.text, "probability": round(g.probability, 6)} for g in answer.top],
            "tokens": [{"text": t.text, "probability": _round(t.probability)} for t in answer.tokens]}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def table_to_dict(state: SheetState) -> dict[str, Any]:
    """The table with its marks: header, rows, instructions and which cells are model output (run inputs)."""
    marks: list[dict[str, Any]] = []
    for (r, c), answer in sorted(state.answers.items()):
        unsure = answer.confidence is not None and answer.confidence < state.threshold
        mark = "unsure" if unsure else "model"
        marks.append({**answer_to_dict(answer), "row": r, "column": c, "mark": mark})
    marks += [{"row": r, "column": c, "mark": "accepted"} for r, c in sorted(state.accepted - state.answers.keys())]
    marks.sort(key=lambda m: (m["row"], m["column"]))
    return {"version": VERSION, "header": list(state.sheet.columns), "rows": [list(r) for r in state.sheet.rows],
            "instructions": dict(state.sheet.instructions), "marks": marks}


def sheet_to_dict(state: SheetState) -> dict[str, Any]:
    """The whole tab as a JSON-serialisable draft: the table, the threshold, the evaluation settings and chart."""
    return {**table_to_dict(state), "threshold": state.threshold,
            "eval": {"column": state.eval_column, "shots": state.shots, "tolerance": state.tolerance,
                     "metric": state.metric},
            "chart": {"title": state.chart_title, "points": [p.as_dict() for p in state.points]}}


# -- reading -------------------------------------------------------------------------------------------------
def sheet_from_dict(data: object) -> SheetState:
    """The state a draft (or a run's ``inputs.sheet``) describes; whatever is unreadable takes its default."""
    state = SheetState()
    if not isinstance(data, dict):
        return state
    table = _table(data)
    if table is not None:
        state.sheet = table
        state.answers, state.accepted = _marks(data.get("marks"), table)
    state.threshold = _fraction(data.get("threshold"), DEFAULT_THRESHOLD)
    settings = data.get("eval") if isinstance(data.get("eval"), dict) else {}
    state.eval_column = _text(settings.get("column"))
    state.shots = _text(settings.get("shots")) or state.shots
    state.tolerance = _fraction(settings.get("tolerance"), DEFAULT_TOLERANCE)
    metric = settings.get("metric")
    state.metric = metric if metric in METRIC_KEYS else state.metric
    chart = data.get("chart") if isinstance(data.get("chart"), dict) else {}
    state.chart_title = _text(chart.get("title"))
    state.points = points_from_list(chart.get("points"))
    return state


def answer_from_dict(data: object, sheet: Sheet) -> CellAnswer | None:
    """A model cell read back, its value taken from ``data`` or else from the table; None when unreadable."""
    if not isinstance(data, dict):
        return None
    r, c = _int(data.get("row")), _int(data.get("column"))
    if r is None or c is None or not (0 <= r < len(sheet.rows) and 0 <= c < len(sheet.columns)):
        return None
    value = data["value"] if isinstance(data.get("value"), str) else sheet.rows[r][c]
    raw = data["raw"] if isinstance(data.get("raw"), str) else value
    top = tuple(Guess(t, p) for t, p in _probabilities(data.get("top")))
    tokens = tuple(AnswerToken(t, p, ()) for t, p in _probabilities(data.get("tokens"), keep_null=True))
    # A saved null confidence stays unknown (a remote server gave no logprobs); it does not become 0.
    confidence = None if "confidence" in data and data["confidence"] is None else _fraction(data.get("confidence"),
                                                                                           0.0)
    return CellAnswer(0, r, c, raw, value, confidence, tokens, top)


def points_from_list(data: object) -> list[EvalPoint]:
    """Evaluation points read back from their ``as_dict`` form; unreadable ones are left out."""
    points = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("model"), str):
            continue
        k, n = _int(item.get("k")), _int(item.get("n"))
        exact, norm = _number(item.get("exact")), _number(item.get("normalised"))
        if k is None or n is None or k < 0 or n < 0 or exact is None or norm is None:
            continue
        numeric = _number(item.get("numeric"))
        points.append(EvalPoint(item["model"], k, n, _clamp(exact), _clamp(norm),
                                None if numeric is None else _clamp(numeric)))
    return points


def _table(data: dict[str, Any]) -> Sheet | None:
    header = data.get("header")
    if not isinstance(header, list) or not header or len(header) > MAX_COLUMNS:
        return None
    columns, _ = unique_names([_text(h).strip() for h in header])
    rows_in = data.get("rows") if isinstance(data.get("rows"), list) else []
    rows = []
    for row in rows_in[:MAX_ROWS]:  # a row that is not a list stays as a blank one, so marks keep their rows
        cells = [_text(v) for v in row[: len(columns)]] if isinstance(row, list) else []
        rows.append(cells + [""] * (len(columns) - len(cells)))
    notes = data.get("instructions") if isinstance(data.get("instructions"), dict) else {}
    instructions = {k: v.strip() for k, v in notes.items() if k in columns and isinstance(v, str) and v.strip()}
    return Sheet(columns, rows, instructions)


def _marks(data: object, sheet: Sheet) -> tuple[dict[tuple[int, int], CellAnswer], set[tuple[int, int]]]:
    answers: dict[tuple[int, int], CellAnswer] = {}
    accepted: set[tuple[int, int]] = set()
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict) or item.get("mark") not in MARKS:
            continue
        if item["mark"] == "accepted":
            r, c = _int(item.get("row")), _int(item.get("column"))
            if r is not None and c is not None and 0 <= r < len(sheet.rows) and 0 <= c < len(sheet.columns):
                accepted.add((r, c))
            continue
        answer = answer_from_dict({**item, "value": None}, sheet)  # the table's value is the one shown
        if answer is not None:
            answers[(answer.row, answer.column)] = answer
    return answers, accepted - answers.keys()


def _probabilities(data: object, keep_null: bool = False) -> list[tuple[str, Any]]:
    out = []
    for item in data if isinstance(data, list) else []:
        if isinstance(item, dict) and isinstance(item.get("text"), str):
            p = item.get("probability")
            out.append((item["text"], None if keep_null and p is None else _fraction(p, 0.0)))
    return out


def _text(value: object) -> str:
    """Strings as they are, numbers as written; anything else (null, lists, objects) is blank."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def _fraction(value: object, default: float) -> float:
    number = _number(value)
    return default if number is None else _clamp(number)


def state_of_run(run: Run) -> SheetState:
    """The sheet a past run shows: its input table, plus the filled cells (a fill) or the chart (an evaluation or
    a few-shot vs LoRA comparison)."""
    inputs = run.inputs if isinstance(run.inputs, dict) else {}
    outputs = run.outputs if isinstance(run.outputs, dict) else {}
    params = run.params if isinstance(run.params, dict) else {}
    state = sheet_from_dict(inputs.get("sheet"))
    state.threshold = _fraction(params.get("threshold"), state.threshold)
    if inputs.get("kind") in ("eval", "transfer"):  # transfer: one line per method (few-shot, LoRA, both)
        column = _text(outputs.get("column"))
        state.points = points_from_list(outputs.get("points"))
        state.eval_column = column or state.eval_column
        what = "Few-shot vs LoRA" if inputs.get("kind") == "transfer" else "Accuracy"
        state.chart_title = f"{what} on {column!r}" if column else ""
        shots = params.get("shots")
        if isinstance(shots, list) and shots and all(_int(k) is not None for k in shots):
            state.shots = ",".join(str(k) for k in shots)
        state.tolerance = _fraction(params.get("tolerance"), state.tolerance)
        return state
    cells = outputs.get("cells")
    for item in cells if isinstance(cells, list) else []:
        answer = answer_from_dict(item, state.sheet)
        if answer is not None:
            state.sheet.rows[answer.row][answer.column] = answer.value
            state.answers[(answer.row, answer.column)] = answer
            state.accepted.discard((answer.row, answer.column))
    return state
