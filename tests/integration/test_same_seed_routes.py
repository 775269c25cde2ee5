"""Same seed + same settings => same text by every route a user takes: the Prompt tab (after another prompt with the
same source, and again), a Compare column, the window relaunched, and ``playground complete`` (issue 16, item 3)."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from playground import paths
from playground.cli.main import main as cli_main
from playground.models.embedded import EMBEDDED_ID
from playground.models.registry import Registry
from playground.runtime.runner import EngineRunner
from playground.store.db import open_database
from playground.store.repository import SessionStore
from tests.conftest import embedded_home
from tests.tiny import WIDE, build_tiny_llama
from ui.shell.main_window import MainWindow

SOURCE = "Country: France\nCapital: Paris\n\nCountry: Japan\nCapital: Tokyo\n\n"
PROMPT = "Country: Italy\nCapital:"
SETTINGS = {"temperature": 1.0, "seed": 4, "max_new_tokens": 20, "top_p": 1.0, "top_k": 0,
            "repetition_penalty": 1.0, "stop": [], "n": 1}


Tokens = list[tuple[str, float]]  # each token's text and logprob: the text and the numbers behind it


def prompt_tab_texts(qtbot, window: MainWindow) -> list[Tokens]:
    """Another prompt after the same source first (its source stays cached), then ours twice."""
    tab = window.prompt_tab
    texts = []
    for prompt in ("Once upon a time", PROMPT, PROMPT):
        tab.source.setPlainText(SOURCE)
        tab.prompt.setPlainText(prompt)
        with qtbot.waitSignal(tab.run_finished, timeout=120_000) as blocker:
            qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
        texts.append([(t.text, t.logprob) for t in blocker.args[0].first.tokens])
    return texts[1:]


def compare_text(qtbot, window: MainWindow) -> Tokens:
    tab = window.compare_tab
    tab.source.setPlainText(SOURCE)
    tab.prompt.setPlainText(PROMPT)
    tab.set_columns([{"temperature": 1.0, "seed": 4}, {"temperature": 0.0}])  # the rest from the shared panel
    with qtbot.waitSignal(tab.run_ended, timeout=120_000):
        qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.columns[0].text() == "".join(t["text"] for t in tab.columns[0].result["tokens"])
    return [(t["text"], t["logprob"]) for t in tab.columns[0].result["tokens"]]


def texts_by_route(qtbot, tmp_path, capsys, model_id: str) -> dict[str, list[Tokens]]:
    out: dict[str, list[Tokens]] = {}
    for launch in ("first launch", "relaunch"):
        store = SessionStore(open_database(tmp_path / f"{launch}.db"))
        window = MainWindow(EngineRunner(), autoload=False, store=store)
        qtbot.addWidget(window)
        window.show()
        window.refresh_models(select=model_id)
        assert window.current_model() == model_id
        window.params.apply(SETTINGS)
        window.compare_tab.params.apply(SETTINGS)  # each tab has its own panel
        out[f"prompt tab, {launch}"] = prompt_tab_texts(qtbot, window)
        out[f"compare, {launch}"] = [compare_text(qtbot, window)]
        window.close()
    (tmp_path / "source.txt").write_text(SOURCE, encoding="utf-8")
    capsys.readouterr()
    assert cli_main(["complete", "--model", model_id, "--source", str(tmp_path / "source.txt"), "--prompt", PROMPT,
                     "--temperature", "1", "--seed", "4", "--max-tokens", "20", "--json"]) == 0
    out["cli"] = [[(t["text"], t["logprob"]) for t in json.loads(capsys.readouterr().out)["tokens"]]]
    return out


def assert_all_equal(texts: dict[str, list[Tokens]]) -> None:
    first = texts["prompt tab, first launch"][0]
    assert first
    assert {route: [t == first for t in ts] for route, ts in texts.items()} == {
        route: [True] * len(ts) for route, ts in texts.items()}, texts


def test_every_route_gives_the_same_text_on_a_quantized_tiny_model(qtbot, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_PRECISION", "int8")  # the fast path, with its prefix cache
    info = Registry().add(build_tiny_llama(tmp_path / "tiny128", context=600, **WIDE))
    assert_all_equal(texts_by_route(qtbot, tmp_path, capsys, info.id))


@pytest.mark.embedded
def test_every_route_gives_the_same_text_on_the_embedded_model(qtbot, tmp_path, capsys):
    paths.set_data_dir(embedded_home())  # its converted weights; sessions go to tmp_path
    try:
        assert_all_equal(texts_by_route(qtbot, tmp_path, capsys, EMBEDDED_ID))
    finally:
        paths.set_data_dir(None)
