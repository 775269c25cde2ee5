"""Fine-tuning the real embedded SmolLM2-135M on a few sheet rows: the adapter answers held-out rows with no example
in the prompt, and merged at load it gives the same answers (fp32 on the fused runner: exactly; the default int4
path built on top: within its rounding, as the bench measures, here 3 of 4 at least)."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground.domain.text import GenerationRequest
from playground.engine.fill import SheetFiller
from playground.engine.generate import generate
from playground.engine.lora import LoraTrainer
from playground.engine.text import load_text_model
from playground.tasks.sheet import Sheet, cell_prompt
from playground.tasks.sheet_transfer import training_examples

pytestmark = pytest.mark.embedded

TRAIN = [("France", "Paris"), ("Japan", "Tokyo"), ("Kenya", "Nairobi"), ("Canada", "Ottawa"), ("Egypt", "Cairo"),
         ("Norway", "Oslo"), ("Peru", "Lima"), ("Greece", "Athens")]
ASKED = {"Italy": "Rome", "Germany": "Berlin", "Spain": "Madrid", "Chile": "Santiago"}


def test_an_adapter_on_8_capitals_answers_zero_shot_and_reloads_merged(embedded_model):
    sheet = Sheet(["Country", "Capital"], [list(p) for p in TRAIN] + [[c, cap] for c, cap in ASKED.items()])
    asked = [cell_prompt(sheet, r, 1, []) for r in range(len(TRAIN), len(sheet.rows))]
    with LoraTrainer(embedded_model) as trainer:  # the defaults: 6 epochs
        result = trainer.train(training_examples(sheet, 1, list(range(len(TRAIN)))))
        tuned = [a.value for a in SheetFiller(trainer.answering_model()).fill(asked).answers]
        info = trainer.save(embedded_model.id, "capitals", {"column": "Capital"})
    assert result.seconds < 60 and result.losses[-1] < result.losses[0] / 4
    assert sum(v == cap for v, cap in zip(tuned, ASKED.values(), strict=True)) >= 3, tuned

    base_folder = Path(embedded_model.model.name_or_path)
    exact = load_text_model(info.id, base_folder, device="cpu", adapter=info.folder, precision="fp32")
    assert exact.fast is not None and [a.value for a in SheetFiller(exact).fill(asked).answers] == tuned
    merged = load_text_model(info.id, base_folder, device="cpu", adapter=info.folder)
    assert merged.path == "fused" and merged.precision == "int4"  # quantized from the merged weights
    answers = [a.value for a in SheetFiller(merged).fill(asked).answers]
    assert sum(a == b for a, b in zip(answers, tuned, strict=True)) >= 3, (answers, tuned)
    italy = generate(merged, GenerationRequest(prompt=asked[0].text, temperature=0, max_new_tokens=8, stop=("\n",)))
    assert italy.first.text.strip() == "Rome"
