"""Output constraints as the app's controls describe them: the Prompt tab's "Constrain output" (a JSON schema, a
regex or a list of choices) and a Sheet column's type (number, one of the values seen, free text), turned into the
engine's ``Constraint``. Shared by the tabs and the CLI so each builds its request the same way."""

from __future__ import annotations

import json
import re
from typing import Any

from playground.domain.sheet import parse_number
from playground.domain.text import Constraint
from playground.errors import ParameterError

# Prompt tab: label -> kind
PROMPT_KINDS = {"Free text": "", "JSON schema": "json_schema", "Regex": "regex", "One of (choices)": "choice"}
# Sheet column types
COLUMN_TYPES = ("free text", "number", "one of the values seen")
# A sheet answer follows "Column:" on its line: an optional space, the value, then the end of the line.
NUMBER_CELL = r" ?-?[0-9][0-9,]{0,15}(\.[0-9]{1,6})?\n"


def constraint_from(kind: str, text: str) -> Constraint | None:
    """The constraint for a kind (``PROMPT_KINDS`` value) and the text typed for it; None for free text.
    JSON schemas are checked as JSON here; choices are comma-separated (``yes, no, maybe``)."""
    if not kind:
        return None
    text = text.strip()
    if not text:
        raise ParameterError(f"Type the {'schema' if kind == 'json_schema' else kind} to constrain the output to, "
                             "or choose Free text")
    if kind == "json_schema":
        try:
            schema = json.loads(text)
        except ValueError as exc:
            raise ParameterError(f"The JSON schema is not valid JSON: {exc}") from exc
        if not isinstance(schema, dict):
            raise ParameterError("The JSON schema must be a JSON object, e.g. {\"type\": \"object\"}")
        return Constraint("json_schema", json.dumps(schema))
    if kind == "choice":
        choices = [c.strip() for c in text.split(",") if c.strip()]
        return Constraint("choice", json.dumps(choices))
    return Constraint(kind, text)


def constraint_from_dict(data: Any) -> Constraint | None:
    """A constraint saved with a run or a draft; None for anything malformed (an old or edited file)."""
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str) or not isinstance(data.get("spec"), str):
        return None
    try:
        return Constraint(data["kind"], data["spec"])
    except ParameterError:
        return None


def prompt_text_of(constraint: Constraint | None) -> tuple[str, str]:
    """(kind, text) for the Prompt tab's controls, the inverse of ``constraint_from``."""
    if constraint is None:
        return "", ""
    if constraint.kind == "choice":
        return "choice", ", ".join(json.loads(constraint.spec))
    return constraint.kind, constraint.spec


def column_constraint(column_type: str, values: list[str]) -> Constraint | None:
    """A sheet column's type as a cell constraint: the answer is a number, or one of ``values`` (the column's
    filled cells, distinct), followed by the end of the line; None for free text."""
    if column_type == "number":
        return Constraint("regex", NUMBER_CELL)
    if column_type == "one of the values seen":
        seen = sorted({v.strip() for v in values if v.strip()})
        if not seen:
            raise ParameterError("The column has no values yet to choose from; fill a few cells or use free text")
        return Constraint("regex", r" ?(" + "|".join(re.escape(v) for v in seen) + r")\n")
    if column_type == "free text":
        return None
    raise ParameterError(f"Unknown column type {column_type!r}; use one of {', '.join(COLUMN_TYPES)}")


def numeric_values_ok(values: list[str]) -> bool:
    """True when every filled value parses as a number (what a "number" column should hold)."""
    return all(parse_number(v) is not None for v in values if v.strip())
