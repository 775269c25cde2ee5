"""The status bar's engine side: load progress, device, model, speed and the process's memory."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QWidget

from playground.domain.jobs import ProgressEvent
from playground.domain.text import GenerationResult
from playground.sysinfo import human_bytes, rss_bytes
from ui.common.bridge import EngineBridge
from ui.common.widgets import ElidedLabel, plain_tip, warn

MEMORY_MS = 2000


class EngineStatus(QObject):
    def __init__(self, bar: QStatusBar, bridge: EngineBridge, on_loaded: Callable[[], None]) -> None:
        super().__init__(bar)
        self.bar = bar
        self._bridge = bridge
        self._on_loaded_hook = on_loaded
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.device_label = ElidedLabel("device: –")
        self.model_label = ElidedLabel("model: not loaded", minimum=120)  # a long path never widens the window
        self.speed_label = QLabel("– tok/s")
        self.memory_label = QLabel()
        gap = QWidget()  # a long message to the left had ended flush against the first label
        gap.setFixedWidth(12)
        bar.addPermanentWidget(gap)
        bar.addPermanentWidget(self.progress)
        for label in (self.device_label, self.model_label, self.speed_label, self.memory_label):
            bar.addPermanentWidget(label)
        self._memory_timer = QTimer(self, interval=MEMORY_MS)
        self._memory_timer.timeout.connect(self._update_memory)
        self._memory_timer.start()
        self._update_memory()
        bridge.progress.connect(self._on_engine_progress)
        bridge.loaded.connect(self._on_engine_loaded)
        bridge.failed.connect(self._on_engine_failed)
        bridge.load_failed.connect(self._on_load_failed)
        bridge.finished.connect(self._on_engine_finished)
        bridge.busy_changed.connect(self._on_engine_busy)

    def stop(self) -> None:
        self._memory_timer.stop()

    @Slot(object)
    def _on_engine_progress(self, event: ProgressEvent) -> None:
        self.progress.show()
        if event.fraction is None:
            self.progress.setRange(0, 0)  # busy indicator
        else:
            self.progress.setRange(0, 100)
            self.progress.setValue(int(event.fraction * 100))
        self.progress.setFormat("%p%")  # the stage itself is the status message beside it
        self.progress.setToolTip(plain_tip(event.stage))
        self.bar.showMessage(event.stage)

    @Slot(object)
    def _on_engine_loaded(self, info: object) -> None:
        remote = info.dtype == "remote"
        self.device_label.setText(f"device: {info.device}" if remote else f"device: {info.device} ({info.dtype})")
        if info.path and not remote:  # which engine path runs it (fused C++ step, generic, transformers)
            self.device_label.setText(f"device: {info.device} ({info.dtype}, {info.path})")
        if not remote:  # the kernels' code path
            self.device_label.setToolTip(plain_tip(f"{info.model_id}: {info.detail or info.dtype}"))
        self.model_label.setText(f"model: {info.model_id}")
        self.bar.showMessage(f"Loaded {info.model_id} in {info.load_s:.1f} s", 5000)
        self._on_loaded_hook()

    @Slot(object)
    def _on_engine_finished(self, result: GenerationResult) -> None:
        self.model_label.setText(f"model: {result.model}")
        if not self.device_label.text().startswith(f"device: {result.device}"):  # keep "(precision, path)"
            self.device_label.setText(f"device: {result.device}")
        self.speed_label.setText(f"{result.first.timings.tokens_per_s:.1f} tok/s")

    @Slot(str, bool)
    def _on_engine_failed(self, message: str, _is_bug: bool) -> None:
        self.bar.showMessage(message.splitlines()[0], 15000)
        self.progress.hide()
        loaded = getattr(self._bridge.runner, "loaded_info", None)
        if loaded is not None and loaded() is None:  # a failed load: the model before it was freed first
            self.model_label.setText("model: not loaded")
            self.device_label.setText("device: –")
            self.speed_label.setText("– tok/s")

    @Slot(str, bool)
    def _on_load_failed(self, message: str, is_bug: bool) -> None:
        """A model chosen, added or dropped did not load: the whole reason, which the status bar cuts off."""
        first = (message.splitlines() or ["failed"])[0]
        warn(self.bar.window(), "Model not loaded", f"Internal error (a bug in Playground): {first}" if is_bug
             else message)

    @Slot(bool)
    def _on_engine_busy(self, busy: bool) -> None:
        if not busy:
            self.progress.hide()

    @Slot()
    def _update_memory(self) -> None:
        self.memory_label.setText(f"memory: {human_bytes(rss_bytes())}")
