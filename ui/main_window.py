"""The main window: a tab per mode, a model picker, the parameters panel and a status bar."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QProgressBar,
    QTabWidget,
    QToolButton,
    QWidget,
)

from playground.domain import GenerationResult, ProgressEvent
from playground.errors import KnownError
from playground.models.embedded import EMBEDDED_ID
from playground.models.registry import Registry
from playground.sysinfo import human_bytes, rss_bytes
from ui.bridge import EngineBridge, Runner
from ui.params_panel import ParamsPanel
from ui.prompt_tab import PromptTab


class MainWindow(QMainWindow):
    def __init__(self, runner: Runner, registry: Registry | None = None, autoload: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Playground")
        self.resize(1200, 800)
        self.registry = registry or Registry()
        self.bridge = EngineBridge(runner, self)

        self.model_picker = QComboBox()
        self.model_picker.setMinimumContentsLength(28)
        self.model_picker.setToolTip("The model every run uses; it loads in the background")
        self.model_picker.activated.connect(self._on_model_picked)
        add_button = QToolButton()
        add_button.setText("Add model…")
        add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(add_button)
        menu.addAction("Model folder (safetensors)…", self._add_folder)
        menu.addAction("GGUF file…", self._add_gguf)
        add_button.setMenu(menu)
        toolbar = self.addToolBar("Model")
        toolbar.setMovable(False)
        toolbar.addWidget(QLabel(" Model: "))
        toolbar.addWidget(self.model_picker)
        toolbar.addWidget(add_button)

        self.params = ParamsPanel()
        dock = QDockWidget("Parameters", self)
        dock.setObjectName("params")
        dock.setWidget(self.params)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)

        self.tabs = QTabWidget()
        self.prompt_tab = PromptTab(self.bridge, self.params, self.current_model)
        self.tabs.addTab(self.prompt_tab, "Prompt")
        self.setCentralWidget(self.tabs)

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.device_label = QLabel("device: –")
        self.model_label = QLabel("model: not loaded")
        self.speed_label = QLabel("– tok/s")
        self.memory_label = QLabel()
        bar = self.statusBar()
        bar.addPermanentWidget(self.progress)
        for label in (self.device_label, self.model_label, self.speed_label, self.memory_label):
            bar.addPermanentWidget(label)
        self._memory_timer = QTimer(self, interval=2000)
        self._memory_timer.timeout.connect(self._update_memory)
        self._memory_timer.start()
        self._update_memory()

        quit_action = QAction("Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close)
        self.addAction(quit_action)

        self.bridge.progress.connect(self._on_engine_progress)
        self.bridge.loaded.connect(self._on_engine_loaded)
        self.bridge.failed.connect(self._on_engine_failed)
        self.bridge.finished.connect(self._on_engine_finished)
        self.bridge.busy_changed.connect(self._on_engine_busy)
        self.refresh_models(select=EMBEDDED_ID)
        if autoload:
            # After the first paint: the window shows at once, torch loads behind it.
            QTimer.singleShot(0, lambda: self.bridge.load(self.current_model()))

    # -- models ----------------------------------------------------------------------------------------------
    def current_model(self) -> str:
        return self.model_picker.currentData() or EMBEDDED_ID

    def refresh_models(self, select: str | None = None) -> None:
        keep = select or self.current_model()
        self.model_picker.clear()
        for info in self.registry.list():
            if info.kind != "text":
                continue
            note = "" if info.ready else " (prepared on first use)"
            size = f" · {human_bytes(info.size_bytes)}" if info.size_bytes else ""
            self.model_picker.addItem(f"{info.id} · {info.source}{size}{note}", info.id)
        index = self.model_picker.findData(keep)
        self.model_picker.setCurrentIndex(max(index, 0))

    @Slot(int)
    def _on_model_picked(self, _index: int) -> None:
        self.bridge.load(self.current_model())

    def _add_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add a model folder")
        if path:
            self.add_model(path)

    def _add_gguf(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a GGUF file", filter="GGUF models (*.gguf)")
        if path:
            self.add_model(path)

    def add_model(self, path: str) -> None:
        try:
            info = self.registry.add(path)
        except KnownError as exc:
            self.statusBar().showMessage(str(exc), 10000)
            return
        self.refresh_models(select=info.id)
        self.bridge.load(info.id)

    # -- engine events ---------------------------------------------------------------------------------------
    @Slot(object)
    def _on_engine_progress(self, event: ProgressEvent) -> None:
        self.progress.show()
        if event.fraction is None:
            self.progress.setRange(0, 0)  # busy indicator
        else:
            self.progress.setRange(0, 100)
            self.progress.setValue(int(event.fraction * 100))
        self.progress.setFormat("%p%")  # the stage itself is the status message beside it
        self.progress.setToolTip(event.stage)
        self.statusBar().showMessage(event.stage)

    @Slot(object)
    def _on_engine_loaded(self, info: object) -> None:
        self.device_label.setText(f"device: {info.device} ({info.dtype})")
        self.model_label.setText(f"model: {info.model_id}")
        self.statusBar().showMessage(f"Loaded {info.model_id} in {info.load_s:.1f} s", 5000)
        self.refresh_models()

    @Slot(object)
    def _on_engine_finished(self, result: GenerationResult) -> None:
        self.model_label.setText(f"model: {result.model}")
        self.device_label.setText(f"device: {result.device}")
        self.speed_label.setText(f"{result.first.timings.tokens_per_s:.1f} tok/s")

    @Slot(str, bool)
    def _on_engine_failed(self, message: str, _is_bug: bool) -> None:
        self.statusBar().showMessage(message.splitlines()[0], 15000)
        self.progress.hide()

    @Slot(bool)
    def _on_engine_busy(self, busy: bool) -> None:
        if not busy:
            self.progress.hide()

    @Slot()
    def _update_memory(self) -> None:
        self.memory_label.setText(f"memory: {human_bytes(rss_bytes())}")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self._memory_timer.stop()
        self.bridge.shutdown()  # stops a running generation within one token, then joins the worker
        super().closeEvent(event)
