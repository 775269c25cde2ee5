"""A few checks on the real embedded SmolLM2-135M (converted by the set-up script, loaded in seconds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from playground.domain.text import FinishReason, GenerationRequest
from playground.engine.generate import generate
from playground.tasks.presets import load_presets
from tests.conftest import embedded_home

pytestmark = pytest.mark.embedded

CAPITALS = "Country: France\nCapital: Paris\n\nCountry: Japan\nCapital: Tokyo\n\nCountry: Kenya\nCapital: Nairobi\n\n"


def test_few_shot_italy_completes_rome(embedded_model):
    req = GenerationRequest(source=CAPITALS, prompt="Country: Italy\nCapital:", temperature=0,
                            max_new_tokens=8, stop=("\n",))
    result = generate(embedded_model, req).first
    assert result.text == " Rome"
    assert result.finish_reason == FinishReason.STOP
    assert result.tokens[0].top[0].text == " Rome"


def test_change_the_prompt_keep_the_source(embedded_model):
    """The second prompt runs only its own tokens: the source's are reused from the first run's cache."""
    assert embedded_model.fast is not None, embedded_model.path  # the embedded model decodes on the fast path
    source_tokens = len(embedded_model.tokenizer(CAPITALS)["input_ids"])
    answers, reused = {}, {}
    for country in ("Germany", "Spain"):
        req = GenerationRequest(source=CAPITALS, prompt=f"Country: {country}\nCapital:", temperature=0,
                                max_new_tokens=8, stop=("\n",))
        answers[country] = generate(embedded_model, req).first.text
        reused[country] = embedded_model.fast.reused
    assert answers == {"Germany": " Berlin", "Spain": " Madrid"}
    # the source's last token may merge with the prompt's first when they are tokenised together
    assert source_tokens > 20 and reused["Spain"] >= source_tokens - 1


def test_presets_run_on_the_embedded_model(embedded_model):
    presets = {p.name: p for p in load_presets("prompt")}
    assert len(presets) >= 2
    capital = next(p for p in presets.values() if "capital" in p.name.lower())
    req = GenerationRequest(source=capital.fields["source"], prompt=capital.fields["prompt"],
                            **{k: tuple(v) if k == "stop" else v for k, v in capital.params.items()})
    assert generate(embedded_model, req).first.text == " Rome"


def test_cli_in_a_fresh_process(tmp_path):
    source = tmp_path / "source.txt"
    source.write_text(CAPITALS)
    env = {**os.environ, "PLAYGROUND_HOME": str(embedded_home())}
    proc = subprocess.run(
        [sys.executable, "-m", "playground.cli", "complete", "--source", str(source), "--prompt",
         "Country: Italy\nCapital:", "--temperature", "0", "--max-tokens", "5", "--stop", "\n", "--json"],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["model"] == "smollm2-135m-instruct" and data["text"] == " Rome"
    assert data["tokens"][0]["top"][0]["text"] == " Rome"
