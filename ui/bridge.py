"""Turn engine callbacks (on the worker thread) into Qt signals delivered on the GUI thread.

The bridge lives on the GUI thread; signals emitted from the engine's thread are queued to it, so slots
connected here always run on the GUI thread.
"""

from __future__ import annotations

import traceback
from concurrent.futures import Future
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal, Slot

from playground.domain import GenerationRequest
from playground.engine.generate import Cancel
from playground.errors import KnownError


class Runner(Protocol):
    """What the UI needs from an engine runner (EngineRunner, or a scripted one in tests)."""

    def load(self, model_id: str, on_progress: Any = ...) -> Future: ...
    def generate(self, model_id: str, request: GenerationRequest, on_token: Any = ...,
                 cancel: Cancel | None = None, on_progress: Any = ...) -> Future: ...
    def shutdown(self, wait: bool = True) -> None: ...


class EngineBridge(QObject):
    token = Signal(object)  # TokenEvent
    progress = Signal(object)  # ProgressEvent
    loaded = Signal(object)  # LoadedInfo
    finished = Signal(object)  # GenerationResult
    failed = Signal(str, bool)  # message, is_bug
    busy_changed = Signal(bool)
    _job_done = Signal()  # emitted from the worker; counted on the GUI thread

    def __init__(self, runner: Runner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self._cancel: Cancel | None = None
        self._jobs = 0
        self._job_done.connect(self._on_job_done)

    @property
    def busy(self) -> bool:
        return self._jobs > 0

    def load(self, model_id: str) -> None:
        self._track(self.runner.load(model_id, self.progress.emit), self.loaded)

    def generate(self, model_id: str, request: GenerationRequest) -> None:
        self._cancel = Cancel()
        self._track(self.runner.generate(model_id, request, self.token.emit, self._cancel, self.progress.emit),
                    self.finished)

    def stop(self) -> None:
        """Ask the running generation to stop after the current token; its partial text is kept."""
        if self._cancel is not None:
            self._cancel.set()

    def shutdown(self) -> None:
        self.stop()
        self.runner.shutdown(wait=True)

    def _track(self, future: Future, done_signal: Any) -> None:
        self._jobs += 1
        if self._jobs == 1:
            self.busy_changed.emit(True)

        def done(f: Future) -> None:  # runs on the worker thread: only emit signals here
            exc = None if f.cancelled() else f.exception()
            if f.cancelled():
                self.failed.emit("Cancelled before it started", False)
            elif exc is None:
                done_signal.emit(f.result())
            elif isinstance(exc, KnownError):
                self.failed.emit(str(exc), False)
            else:
                text = "".join(traceback.format_exception(exc))
                self.failed.emit(f"{type(exc).__name__}: {exc}\n\n{text}", True)
            self._job_done.emit()

        future.add_done_callback(done)

    @Slot()
    def _on_job_done(self) -> None:
        self._jobs -= 1
        if self._jobs == 0:
            self.busy_changed.emit(False)
