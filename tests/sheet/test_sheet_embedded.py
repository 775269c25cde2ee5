"""The Sheet mode on the real embedded SmolLM2-135M: the country -> capital sheet fills known capitals."""

from __future__ import annotations

import pytest

from playground.engine.fill import SheetFiller
from playground.tasks.sheet import Sheet, fill_prompts
from playground.tasks.sheet_eval import plan_eval, score

pytestmark = pytest.mark.embedded

KNOWN = [("France", "Paris"), ("Japan", "Tokyo"), ("Kenya", "Nairobi"), ("Canada", "Ottawa")]
ASKED = {"Italy": "Rome", "Germany": "Berlin", "Spain": "Madrid", "Egypt": "Cairo", "Norway": "Oslo",
         "Peru": "Lima"}


def test_country_capital_sheet_fills_known_capitals_with_confidence(embedded_model):
    sheet = Sheet(["Country", "Capital"], [list(p) for p in KNOWN] + [[c, ""] for c in ASKED])
    result = SheetFiller(embedded_model).fill(fill_prompts(sheet))
    got = {sheet.rows[a.row][0]: a for a in result.answers}
    assert {c: a.value for c, a in got.items()} == ASKED
    confidences = [a.confidence for a in got.values()]
    assert min(confidences) > 0.3 and sum(confidences) / len(confidences) > 0.7
    assert got["Italy"].top[0].text == "Rome" and len(got["Italy"].top) == 5


def test_accuracy_grows_from_zero_shot(embedded_model):
    rows = [list(p) for p in KNOWN] + [[c, cap] for c, cap in ASKED.items()]
    plan = plan_eval(Sheet(["Country", "Capital"], rows), "Capital", shots=(0, 4), max_queries=6)
    result = SheetFiller(embedded_model).fill(plan.prompts)
    points = score(plan, embedded_model.id, [a.value for a in result.answers])
    zero, four = points
    assert four.normalised >= 5 / 6 and four.normalised > zero.normalised
