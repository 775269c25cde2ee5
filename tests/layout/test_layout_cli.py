"""``playground layout``: JSON contract, file output, errors."""

from __future__ import annotations

import json

import pytest

from playground.cli.main import main


def test_layout_json_shape_and_out_file(tmp_path, capsys):
    from tests.tiny import build_tiny_llama

    model = build_tiny_llama(tmp_path / "long-context", context=2048)
    out = tmp_path / "page.html"
    assert main(["layout", "A heading", "--model", str(model), "--max-tokens", "20", "--json",
                 "--out", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"html", "valid", "model", "timings"} and isinstance(data["valid"], bool)
    assert set(data["timings"]) == {"load_s", "ttft_s", "tokens_per_s"}
    assert out.read_text() == data["html"]


def test_a_prompt_too_long_for_the_model_is_one_clear_error(tiny_model_dir, capsys):
    # The tiny model reads 96 tokens; the shipped few-shot prompt is longer.
    assert main(["layout", "A heading", "--model", str(tiny_model_dir), "--json"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("error: ") and "reads at most 96" in err.splitlines()[-1]


@pytest.mark.embedded
def test_heading_and_button_preset_on_the_embedded_model(tmp_path, capsys):
    from tests.conftest import embedded_home

    out = tmp_path / "page.html"
    code = main(["layout", "A large heading Welcome and a blue button that says Subscribe under it", "--json",
                 "--out", str(out), "--data-dir", str(embedded_home())])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"html", "valid", "model", "timings"}
    assert data["model"] == "smollm2-135m-instruct"
    html = data["html"].lower()
    assert "<h1" in html and "<button" in html and "welcome" in html
    assert out.read_text() == data["html"]
