"""Model ▸ Precision: picking one reloads the model at it, is remembered, and a real load honours it."""

from __future__ import annotations

import pytest

from playground import preferences
from playground.engine.text import default_precision, set_default_precision
from playground.models.registry import Registry
from playground.runtime.runner import EngineRunner
from tests.common.scripted import ScriptedRunner
from ui.shell.main_window import MainWindow


@pytest.fixture(autouse=True)
def reset_precision():
    yield
    set_default_precision(None)


class CountingRunner(ScriptedRunner):
    def __init__(self) -> None:
        super().__init__([" x"])
        self.loaded: list[str] = []

    def load(self, model_id, on_progress=lambda e: None):
        self.loaded.append(model_id)
        return super().load(model_id, on_progress)


def test_picking_a_precision_reloads_and_is_remembered(qtbot):
    runner = CountingRunner()
    window = MainWindow(runner, autoload=False)
    qtbot.addWidget(window)
    assert window.precision_actions["auto"].isChecked()
    window.precision_actions["int8"].trigger()
    assert default_precision() == "int8" and preferences.get("precision") == "int8"
    qtbot.waitUntil(lambda: runner.loaded == [window.current_model()])
    window.precision_actions["int8"].trigger()  # same choice again: nothing to reload
    assert len(runner.loaded) == 1

    set_default_precision(None)
    again = MainWindow(CountingRunner(), autoload=False)  # next launch
    qtbot.addWidget(again)
    assert again.precision_actions["int8"].isChecked() and default_precision() == "int8"


def test_the_engine_reloads_a_loaded_model_at_the_new_precision(tiny_model_dir, tmp_path):
    from tests.tiny import build_tiny_llama

    folder = build_tiny_llama(tmp_path / "m64", hidden_size=64, intermediate_size=128)
    registry = Registry()
    info = registry.add(folder)
    runner = EngineRunner(registry, device="cpu", dtype="float32")
    try:
        first = runner.load(info.id).result(60)
        assert first.dtype == "float32" and first.path == "transformers"  # auto: a tiny model stays there
        set_default_precision("int8")
        loaded = runner.load(info.id).result(60)
        # The status bar's facts: the precision and the path actually taken (the fused C++ step on the kernels).
        assert loaded.dtype == "int8" and loaded.path == "fused" and "kernels" in loaded.detail
    finally:
        runner.shutdown()
