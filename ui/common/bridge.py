"""Turn engine callbacks (on the worker thread) into Qt signals delivered on the GUI thread.

The bridge lives on the GUI thread; signals emitted from the engine's thread are queued to it, so slots
connected here always run on the GUI thread.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future
from typing import Any, Protocol

from PySide6.QtCore import QObject, Qt, Signal, Slot

from playground.domain.jobs import Cancel
from playground.domain.text import GenerationRequest
from ui.common.worker import describe_failure


class Runner(Protocol):
    """What the UI needs from an engine runner (EngineRunner, or a scripted one in tests)."""

    def load(self, model_id: str, on_progress: Any = ...) -> Future: ...
    def generate(self, model_id: str, request: GenerationRequest, on_token: Any = ...,
                 cancel: Cancel | None = None, on_progress: Any = ...) -> Future: ...
    def shutdown(self, wait: bool = True) -> None: ...


class ScoreJob(QObject):
    """The outcome of one scoring (``runner.score``): a list of ScoreResults, or a failure."""

    finished = Signal(object)  # list[ScoreResult]
    failed = Signal(str, bool)


class GenerationJob(QObject):
    """The signals of one generation, so each tab hears only its own tokens and results."""

    token = Signal(object)  # TokenEvent
    finished = Signal(object)  # GenerationResult
    failed = Signal(str, bool)  # message, is_bug

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cancel = Cancel()
        self.running = True
        # Connected first, so any later slot already sees the job as ended.
        self.finished.connect(self._on_ended)
        self.failed.connect(self._on_ended)

    def stop(self) -> None:
        """Stop after the current token; the partial text is kept."""
        self.cancel.set()

    @Slot()
    def _on_ended(self) -> None:
        self.running = False
        self.deleteLater()


class EngineBridge(QObject):
    progress = Signal(object)  # ProgressEvent
    loaded = Signal(object)  # LoadedInfo
    finished = Signal(object)  # GenerationResult
    failed = Signal(str, bool)  # message, is_bug
    load_failed = Signal(str, bool)  # the same, for a load asked for alone (no run shows its failure)
    busy_changed = Signal(bool)
    _future_done = Signal(object, object)  # from the worker: (future, its signals), handled on the GUI thread

    def __init__(self, runner: Runner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self._active: GenerationJob | None = None
        self._jobs = 0
        self._future_done.connect(self._on_future_done, Qt.ConnectionType.QueuedConnection)

    @property
    def busy(self) -> bool:
        return self._jobs > 0

    @property
    def generating(self) -> bool:
        return self._active is not None and self._active.running

    def load(self, model_id: str) -> None:
        self._track(self.runner.load(model_id, self.progress.emit), [self.loaded], [self.failed, self.load_failed])

    def generate(self, model_id: str, request: GenerationRequest, on_token: Any = None, on_finished: Any = None,
                 on_failed: Any = None) -> GenerationJob | None:
        """Start a generation and return its job, or None while another one is still running (one device).

        The slots are connected before the work starts, so no early token is missed.
        """
        if self.generating:
            return None
        job = GenerationJob(self)
        for signal, slot in ((job.token, on_token), (job.finished, on_finished), (job.failed, on_failed)):
            if slot is not None:
                signal.connect(slot)
        self._active = job
        future = self.runner.generate(model_id, request, job.token.emit, job.cancel, self.progress.emit)
        self._track(future, [job.finished, self.finished], [job.failed, self.failed])
        return job

    def score(self, model_id: str, items: list[Any], top_logprobs: int, on_finished: Any,
              on_failed: Any) -> ScoreJob:
        """Score texts on the device (queued after any running generation); the outcome reaches the slots."""
        job = ScoreJob(self)
        job.finished.connect(on_finished)
        job.failed.connect(on_failed)
        for signal in (job.finished, job.failed):
            signal.connect(job.deleteLater)
        self._track(self.runner.score(model_id, items, top_logprobs, self.progress.emit), [job.finished],
                    [job.failed, self.failed])
        return job

    def stop(self) -> None:
        """Ask the running generation to stop after the current token; its partial text is kept."""
        if self.generating:
            self._active.stop()

    def shutdown(self) -> None:
        self.stop()
        self.runner.shutdown(wait=True)

    def _track(self, future: Future, done_signals: list[Any], fail_signals: list[Any]) -> None:
        self._jobs += 1
        if self._jobs == 1:
            self.busy_changed.emit(True)
        # Always relayed through the event queue, even when the future is already done here: its result must
        # arrive after every token the worker queued before it.
        future.add_done_callback(lambda f: self._relay(f, (done_signals, fail_signals)))

    def _relay(self, f: Future, signals: tuple[list[Any], list[Any]]) -> None:
        with contextlib.suppress(RuntimeError):  # the window is gone: no one left to tell
            self._future_done.emit(f, signals)

    @Slot(object, object)
    def _on_future_done(self, f: Future, signals: tuple[list[Any], list[Any]]) -> None:
        done_signals, fail_signals = signals
        exc = None if f.cancelled() else f.exception()
        if f.cancelled():
            message, is_bug = "Cancelled before it started", False
        elif exc is None:
            for signal in done_signals:
                signal.emit(f.result())
            message, is_bug = "", False
        else:
            message, is_bug = describe_failure(exc)
        if message:
            for signal in fail_signals:
                signal.emit(message, is_bug)
        self._on_job_done()

    def _on_job_done(self) -> None:
        self._jobs -= 1
        if self._jobs == 0:
            self.busy_changed.emit(False)
