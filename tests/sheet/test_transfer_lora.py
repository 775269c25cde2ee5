"""LoRA fine-tuning on sheet rows (playground.engine.lora + sheet_transfer.train_adapter) on a tiny in-process llama:
it learns a table it cannot know, is seeded, leaves the loaded model as it was, saves adapters whole or not at all,
and a saved adapter reloads (merged, through the registry) to the same answers in the Sheet and the Prompt paths."""

from __future__ import annotations

import json

import pytest

from playground.domain.jobs import Cancel
from playground.domain.text import GenerationRequest
from playground.engine.fill import SheetFiller
from playground.engine.generate import generate
from playground.engine.lora import LoraSettings, LoraTrainer, merge_adapter
from playground.errors import ModelNotFound, ParameterError, UnsupportedModel
from playground.models import adapters
from playground.models.registry import Registry
from playground.runtime.dispatch import load_model
from playground.tasks.sheet import cell_prompt
from playground.tasks.sheet_eval import EvalCase, EvalPlan, score
from playground.tasks.sheet_transfer import train_adapter, training_examples
from tests.sheet.conftest import codes

LEARN = LoraSettings(epochs=30, learning_rate=2e-2, rank=16)  # enough steps for a random tiny model


def zero_shot(sheet) -> EvalPlan:
    """Every row asked with no example rows: only a fine-tuned model can know the code."""
    cases = tuple(EvalCase(0, r, sheet.rows[r][1], cell_prompt(sheet, r, 1, [])) for r in range(len(sheet.rows)))
    return EvalPlan(1, sheet.columns[1], (0,), cases, False, ())


def answers(tm, plan: EvalPlan) -> list[str]:
    return [a.value for a in SheetFiller(tm, 8, 8).fill(plan.prompts).answers]


def accuracy(tm, plan: EvalPlan) -> float:
    return score(plan, "m", answers(tm, plan))[0].exact


def test_a_tiny_model_learns_a_made_up_mapping_from_8_rows_and_is_restored_after(tiny64):
    sheet = codes(8)
    plan = zero_shot(sheet)
    before = answers(tiny64, plan)
    assert accuracy(tiny64, plan) <= 1 / 8  # chance: random 3-letter codes
    progress = []
    with LoraTrainer(tiny64, LEARN) as trainer:
        result = trainer.train(training_examples(sheet, 1, list(range(8))), progress.append)
        learnt = accuracy(trainer.answering_model(), plan)
    assert learnt >= 0.9, learnt
    assert result.steps_done == result.steps == 30 and not result.cancelled
    assert result.losses[-1] < result.losses[0] / 5
    assert [p.step for p in progress] == list(range(1, 31)) and progress[-1].eta_s == 0
    # Detached: the shared model answers exactly as before and its weights are trainable again as loaded.
    assert answers(tiny64, plan) == before
    assert all(p.requires_grad for p in tiny64.model.parameters())
    assert not any("lora" in name for name, _ in tiny64.model.named_modules())


def test_training_is_seeded(tiny64):
    examples = training_examples(codes(8), 1, list(range(8)))

    def losses(seed: int) -> tuple[float, ...]:
        with LoraTrainer(tiny64, LoraSettings(epochs=3, learning_rate=2e-2, seed=seed)) as trainer:
            return trainer.train(examples).losses

    first = losses(0)
    assert losses(0) == first
    assert losses(1) != first


def test_a_saved_adapter_reloads_merged_with_the_same_answers(tiny64_dir):
    from playground.engine.text import set_default_precision

    base = Registry().add(tiny64_dir).id
    tm = load_model(base)
    sheet = codes(8)
    plan = zero_shot(sheet)
    prompt = "Colour: pink\nCode:"
    with LoraTrainer(tm, LEARN) as trainer:
        trainer.train(training_examples(sheet, 1, list(range(8))))
        trained = answers(trainer.answering_model(), plan)
        text = generate(trainer.answering_model(), GenerationRequest(prompt=prompt, temperature=0,
                                                                     max_new_tokens=6)).first.text
        info = trainer.save(base, "codes", {"column": "Code", "rows_hash": adapters.rows_hash(sheet.rows,
                                                                                              sheet.columns)})
    assert info.id == f"{base}+codes"
    meta = json.loads((info.folder / adapters.META_FILE).read_text())
    assert meta["base"] == base and meta["settings"]["epochs"] == 30 and len(meta["rows_hash"]) == 16

    listed = [m.id for m in Registry().list(include_hf_cache=False)]
    assert listed[listed.index(base) + 1] == info.id  # a variant, right after its base
    set_default_precision("fp32")  # build the fast decode path: it must be built from the merged weights
    merged = load_model(info.id)
    assert merged.fast is not None
    assert answers(merged, plan) == trained  # the Sheet path (transformers forward)
    assert generate(merged, GenerationRequest(prompt=prompt, temperature=0, max_new_tokens=6)).first.text == text
    assert answers(tm, plan) != trained  # the base, loaded alone, does not know the codes


def test_cancelling_mid_training_leaves_no_adapter_and_the_model_unchanged(tiny64):
    sheet = codes(8)
    plan = zero_shot(sheet)
    before = answers(tiny64, plan)
    cancel = Cancel()

    def on_progress(p):
        if p.step == 3:
            cancel.set()

    trained = train_adapter(tiny64, sheet, "Code", "half", settings=LEARN, on_progress=on_progress, cancel=cancel)
    assert trained.info is None and len(trained.losses) == 3
    assert list(adapters.adapters_dir().iterdir()) == []  # not even a temp folder
    assert adapters.find("tiny-64+half") is None
    assert answers(tiny64, plan) == before


def test_a_failed_save_leaves_nothing_behind(tiny64, monkeypatch):
    def broken_publish(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(adapters, "publish", broken_publish)
    with pytest.raises(OSError):
        train_adapter(tiny64, codes(4), "Code", "broken", settings=LoraSettings(epochs=1))
    assert list(adapters.adapters_dir().iterdir()) == []


def test_adapters_are_listed_deleted_and_refused_when_unsafe(tiny64, tmp_path):
    trained = train_adapter(tiny64, codes(4), "Code", "small", rows=2, settings=LoraSettings(epochs=1))
    assert trained.info is not None and trained.rows == 2
    assert [a.id for a in adapters.list_adapters()] == ["tiny-64+small"]
    assert trained.info.meta["rows"] == 2 and trained.info.meta["column"] == "Code"
    adapters.delete("tiny-64+small")
    assert adapters.list_adapters() == [] and adapters.find("tiny-64+small") is None
    with pytest.raises(ModelNotFound):
        adapters.delete("tiny-64+small")
    with pytest.raises(ParameterError):
        train_adapter(tiny64, codes(4), "Code", "no spaces")
    pickle_only = tmp_path / "pickled"
    pickle_only.mkdir()
    (pickle_only / "adapter_config.json").write_text("{}")
    (pickle_only / "adapter_model.bin").write_bytes(b"\x80")
    with pytest.raises(UnsupportedModel, match="pickle"):
        merge_adapter(tiny64.model, pickle_only)
