"""The app's own speed: time from launch to a visible window, and the worst UI event-loop stall while the embedded
model loads and generates (a 5 ms QTimer records the gaps between its ticks; goal: no gap over 50 ms).

    .venv/bin/python -m pytest bench/ui_responsiveness.py -s -p no:cacheprovider

Real window, real engine, real model (the embedded one, at the default precision); prints a table and writes
bench/results/ui_responsiveness.json. A bench, not a test: it is never part of the default test run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _results import write_result  # bench/_results.py, beside this file
from PySide6.QtCore import QElapsedTimer, QTimer

from playground import paths
from playground.runtime.runner import EngineRunner
from tests.conftest import embedded_home
from ui.shell.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "ui_responsiveness.json"
TICK_MS = 5
STALL_GOAL_MS = 50
_report: dict[str, object] = {}


class StallMeter:
    """Largest gap between ticks of a fast timer on the UI thread: how long the window could not repaint."""

    def __init__(self) -> None:
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self._last = 0

    def start(self) -> None:
        self.gaps.clear()
        self.clock.start()
        self._last = 0
        self.timer.start()

    def stop(self) -> dict[str, float]:
        self.timer.stop()
        gaps = sorted(self.gaps) or [0.0]
        return {"worst_ms": gaps[-1], "p99_ms": gaps[int(0.99 * (len(gaps) - 1))], "ticks": len(gaps),
                "over_goal": sum(g > STALL_GOAL_MS for g in gaps)}

    def _tick(self) -> None:
        now = self.clock.elapsed()
        self.gaps.append(float(now - self._last))
        self._last = now


def test_time_from_launch_to_a_visible_window(tmp_path):
    """Launch ``playground`` in a fresh process three times; the app prints when its window is first shown. Reports
    the time (a figure, not a pass/fail goal: a busy machine would fail it for nothing)."""
    env = {**os.environ, "PLAYGROUND_HOME": str(embedded_home()), "QT_QPA_PLATFORM": "offscreen",
           "PLAYGROUND_STARTUP_PROBE": "1"}
    times = []
    for _ in range(3):
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "ui.shell.app"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
        assert "window shown" in proc.stderr, proc.stderr[-2000:]
        shown_after = float(proc.stderr.split("window shown after ")[1].split(" s")[0])
        times.append((time.perf_counter() - started, shown_after))
    launch = min(t[0] - t[1] for t in times)  # wall time of the whole run minus what followed the show
    _report["launch"] = {"visible_s_runs": [round(t[1], 3) for t in times]}
    print(f"\nwindow visible after {min(t[1] for t in times):.2f} s (best of 3; process start to first show); "
          f"interpreter + exit overhead {launch:.2f} s")


@pytest.fixture
def window(qtbot, tmp_path):
    from playground.store.db import open_database
    from playground.store.repository import SessionStore

    # The embedded model (and its stored int4 weights) from the real data dir; the sessions in a temporary one.
    store = SessionStore(open_database(tmp_path / "sessions.db"))
    paths.set_data_dir(embedded_home())
    runner = EngineRunner()
    win = MainWindow(runner, autoload=False, store=store)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
    runner.shutdown()
    paths.set_data_dir(None)


def test_event_loop_never_stalls_while_loading_and_generating(qtbot, window):
    meter = StallMeter()
    tab = window.prompt_tab
    tab.source.setPlainText("Country: France\nCapital: Paris\n\nCountry: Japan\nCapital: Tokyo\n\n")
    tab.prompt.setPlainText("Country: Italy\nCapital:")
    window.params.max_tokens.setValue(128)
    results = {}
    meter.start()
    with qtbot.waitSignal(tab.run_finished, timeout=300_000) as first:
        tab.run()  # first run: loads (and quantizes) the model, then generates
    results["load + generate"] = meter.stop()
    meter.start()
    with qtbot.waitSignal(tab.run_finished, timeout=300_000) as second:
        tab.run()
    results["generate"] = meter.stop()
    _report["stalls"] = results
    _report["tokens"] = [len(first.args[0].first.tokens), len(second.args[0].first.tokens)]
    print("\n| phase | worst stall ms | p99 ms | gaps > 50 ms | ticks |\n|---|---|---|---|---|")
    for phase, r in results.items():
        print(f"| {phase} | {r['worst_ms']:.0f} | {r['p99_ms']:.0f} | {r['over_goal']} | {r['ticks']} |")
    write_result("ui_responsiveness", _report)
