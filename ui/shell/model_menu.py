"""The toolbar's "Add model…" button: add a model folder or a .gguf file (also what a drop on the window does), open
the Endpoints and Fine-tuned adapters dialogs, and take a model the user added off the list again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMenu, QToolButton

from playground.domain.jobs import ProgressEvent
from playground.errors import KnownError
from playground.models.embedded import EMBEDDED_ID
from playground.models.gguf_parts import gguf_models_of
from playground.runtime.dispatch import add_model, fetch_model
from ui.common.widgets import warn
from ui.common.worker import Worker

if TYPE_CHECKING:
    from playground.domain.models import ModelInfo
    from ui.shell.main_window import MainWindow


class ModelMenu(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.button = QToolButton()
        self.button.setText("Add model…")
        self.button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.button.setToolTip("Add a model folder or a .gguf file (or drop one on the window)")
        menu = self.menu = QMenu(self.button)  # the menu bar's Model menu holds the same actions
        menu.addAction("Add model &folder (safetensors or GGUF)…", self._add_folder)
        menu.addAction("Add &GGUF file…", self._add_gguf)
        menu.addAction("From &Hugging Face… (org/Name, org/Name-GGUF:Q4_K_M)", self._add_from_hub)
        menu.addSeparator()
        menu.addAction("&Endpoints… (vLLM, llama.cpp, Ollama …)", window.open_endpoints)
        menu.addAction("Fine-tuned &adapters…", window.open_adapters)
        menu.addSeparator()
        self.remove_action = menu.addAction("Remove from the list", self.remove_current)
        menu.aboutToShow.connect(self.sync_remove_action)
        self.button.setMenu(menu)
        self._adder = Worker("model-add", self)
        self._adder.status.connect(self._show_status)

    def add(self, path: str) -> None:
        """Register ``path`` (a model folder or a .gguf file), then choose it and load it. A file that cannot be a
        model (a damaged GGUF, a folder without config.json) is not added: a warning says why. Checked off the GUI
        thread: a GGUF's header holds its whole vocabulary, read by the kernel library, which a first run may still
        be building. A folder of several GGUF models (a repository's quantizations) opens the file dialog there,
        for the user to pick one."""
        folder = Path(path)
        if len(gguf_models_of(folder)) > 1:
            QTimer.singleShot(0, lambda: self._pick_gguf(str(folder)))  # (after a drop's event, not inside it)
            return
        self.window.statusBar().showMessage(f"Adding {Path(path).name}…")
        progress = self._progress()
        self._adder.submit(lambda: add_model(path, self.window.registry, progress)[0], self._added,
                           lambda message, _bug: self._not_added(path, message))

    def _add_from_hub(self) -> None:
        """A Hub id typed in, fetched off the GUI thread (progress in the status bar), then chosen and loaded."""
        text, ok = QInputDialog.getText(self.window, "Add a model from Hugging Face",
                                        "Hub id: org/Name, or a GGUF repository with a quantization "
                                        "(org/Name-GGUF:Q4_K_M)")
        model_id = text.strip()
        if not ok or not model_id:
            return
        self.window.statusBar().showMessage(f"Fetching {model_id}…")
        self._adder.submit(lambda: fetch_model(model_id, self.window.registry, self._progress()), self._added,
                           lambda message, _bug: self._not_added(model_id, message))

    def _progress(self) -> Callable[[ProgressEvent], None]:
        status = self._adder.status

        def progress(event: ProgressEvent) -> None:  # (the worker thread: a queued signal to the status bar)
            status.emit(event.stage if event.fraction is None else f"{event.stage}: {event.fraction:.0%}")

        return progress

    @Slot(str)
    def _show_status(self, text: str) -> None:
        self.window.statusBar().showMessage(text)

    def shutdown(self) -> None:
        self._adder.shutdown()

    def _added(self, info: ModelInfo) -> None:
        self.window.refresh_models(select=info.id)
        self.window.bridge.load(info.id)  # (how it loads: the load's own progress says)

    def _not_added(self, path: str, message: str) -> None:
        first = (message.splitlines() or ["failed"])[0]  # a bug's traceback: the log has it
        self.window.statusBar().showMessage(f"Not added: {first}", 10000)
        warn(self.window, "Model not added", f"{path} was not added.\n\n{first}")

    @Slot()
    def remove_current(self) -> None:
        """Forget the chosen user-added model (its file or folder stays where it is); the embedded model is chosen."""
        w = self.window
        info = w.model_info(w.current_model())
        if info is None or not info.removable:
            return
        try:
            w.registry.remove(info.id)
        except KnownError as exc:
            w.statusBar().showMessage(str(exc), 10000)
            return
        w.refresh_models(select=EMBEDDED_ID)
        w.bridge.load(w.current_model())
        w.statusBar().showMessage(f"Removed {info.id} from the list; {info.path} was not touched", 10000)

    @Slot()
    def sync_remove_action(self) -> None:
        info = self.window.model_info(self.window.current_model())
        removable = info is not None and info.removable
        self.remove_action.setEnabled(removable)
        self.remove_action.setText(f"Remove {info.id} from the list" if info is not None and removable else
                                   "Remove from the list (models you added)")

    def _add_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self.window, "Add a model folder")
        if path:
            self.add(path)

    def _add_gguf(self) -> None:
        self._pick_gguf("")

    def _pick_gguf(self, start: str) -> None:
        # (all files too: a GGUF under another name, such as Ollama's blobs/sha256-…, is taken by its content)
        path, _ = QFileDialog.getOpenFileName(self.window, "Add a GGUF file", start,
                                              "GGUF models (*.gguf);;All files (*)")
        if path:
            self.add(path)
