"""Signals from the engine thread reach the GUI thread intact, many times over.

Regression for PySide6 6.12.0 on Python 3.11, where each Python-side emit leaked a reference to True and
the process aborted after ~570 emits.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Slot

from playground.domain.text import GenerationRequest
from tests.common.scripted import ScriptedRunner
from ui.common.bridge import EngineBridge


class Receiver(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.threads: set[int] = set()

    @Slot(object)
    def on_token(self, _event) -> None:
        self.count += 1
        self.threads.add(threading.get_ident())


def test_ten_thousand_token_signals(qtbot):
    bridge = EngineBridge(ScriptedRunner([f"t{i}" for i in range(10_000)]))
    receiver = Receiver()
    seen_at_finish: list[int] = []
    bridge.finished.connect(lambda _result: seen_at_finish.append(receiver.count))
    with qtbot.waitSignal(bridge.finished, timeout=60_000) as blocker:
        job = bridge.generate("scripted", GenerationRequest(prompt="x"), on_token=receiver.on_token)
    assert job is not None and not job.running
    assert seen_at_finish == [10_000]  # the result arrived after every token, not before the queued ones
    assert len(blocker.args[0].first.tokens) == 10_000
    assert receiver.threads == {threading.get_ident()}  # delivered on the GUI thread
    qtbot.waitUntil(lambda: not bridge.busy, timeout=2000)
    bridge.shutdown()
