"""The Endpoints… dialog: add, edit and remove OpenAI-compatible servers (vLLM, SGLang, llama.cpp, Ollama …).

Name, base URL, default model, API key (a password field; the key goes to the OS keyring or a 0600 file, never
shown again) and timeout. "Test connection" asks the server for its models on a worker thread and fills the
model list; the dialog never waits on the network.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from playground.errors import KnownError
from playground.models.endpoints import DEFAULT_TIMEOUT_S, KEEP, Endpoint, EndpointStore
from ui.common.remote_models import RemoteModels
from ui.common.widgets import banner, hint_label, plain_label

NEW = "(new endpoint)"


class EndpointsDialog(QDialog):
    changed = Signal()  # an endpoint was saved or removed: the model pickers should refresh

    def __init__(self, store: EndpointStore | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Endpoints")
        self.resize(720, 380)
        self.store = store or EndpointStore()
        self.probe = RemoteModels(self)
        self.probe.probed.connect(self._on_probed)
        self._probe_id = 0
        self._loaded: Endpoint | None = None  # the saved endpoint in the form (None: a new one)

        self.list = QListWidget()
        self.list.currentTextChanged.connect(self._on_selected)
        new = QPushButton("New")
        new.clicked.connect(self.new_endpoint)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_current)

        self.name = QLineEdit()
        self.name.setPlaceholderText("vllm  (models become remote:vllm/MODEL)")
        self.url = QLineEdit()
        self.url.setPlaceholderText("http://127.0.0.1:8000/v1")
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.setToolTip("The default model; Test connection lists the server's models")
        self.key = QLineEdit()
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.forget_key = QPushButton("Forget key")
        self.forget_key.setToolTip("Delete the stored API key when you save")
        self.forget_key.setCheckable(True)
        self.timeout = QDoubleSpinBox()
        self.timeout.setRange(1, 3600)
        self.timeout.setSuffix(" s")
        self.timeout.setToolTip("Read timeout: the longest the server may stay silent (a long prompt's prefill)")
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self.test_connection)
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(self.save)
        self.result = plain_label(wrap=True)  # model names as the server sent them
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error = banner("error")

        key_row = QHBoxLayout()
        key_row.addWidget(self.key, 1)
        key_row.addWidget(self.forget_key)
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Base URL", self.url)
        form.addRow("Model", self.model)
        form.addRow("API key", key_row)
        form.addRow("Timeout", self.timeout)
        actions = QHBoxLayout()
        actions.addWidget(self.test_button)
        actions.addStretch(1)
        actions.addWidget(self.save_button)
        right = QVBoxLayout()
        right.addLayout(form)
        right.addLayout(actions)
        right.addWidget(self.result)
        right.addWidget(self.error)
        right.addWidget(hint_label("Any server that speaks the OpenAI API: vLLM, SGLang, llama.cpp's server, Ollama "
                                   "(http://localhost:11434/v1), or another playground serve. Probabilities show "
                                   "where the server sends logprobs."))
        right.addStretch(1)
        left = QVBoxLayout()
        left.addWidget(self.list, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(new)
        buttons.addWidget(self.remove_button)
        left.addLayout(buttons)
        body = QHBoxLayout()
        body.addLayout(left, 1)
        body.addLayout(right, 2)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(close)
        self.reload()

    # -- the list --------------------------------------------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        names = [e.name for e in self.store.list()]
        self.list.blockSignals(True)
        self.list.clear()
        self.list.addItems(names)
        self.list.blockSignals(False)
        if select in names or (select is None and names):
            self.list.setCurrentRow(names.index(select) if select in names else 0)
        else:
            self.new_endpoint()

    @Slot(str)
    def _on_selected(self, name: str) -> None:
        endpoint = next((e for e in self.store.list() if e.name == name), None)
        if endpoint is not None:
            self._fill(endpoint)

    @Slot()
    def new_endpoint(self) -> None:
        self.list.clearSelection()
        self._fill(None)
        self.name.setFocus()

    def _fill(self, endpoint: Endpoint | None) -> None:
        self._loaded = endpoint
        self.name.setText(endpoint.name if endpoint else "")
        self.url.setText(endpoint.base_url if endpoint else "")
        self.model.clear()
        self.model.setEditText(endpoint.model if endpoint else "")
        self.key.clear()
        self.key.setPlaceholderText("stored — type a new key to replace it" if endpoint and endpoint.has_key
                                    else "none (optional)")
        self.forget_key.setChecked(False)
        self.forget_key.setEnabled(bool(endpoint and endpoint.has_key))
        self.timeout.setValue(endpoint.timeout_s if endpoint else DEFAULT_TIMEOUT_S)
        self.remove_button.setEnabled(endpoint is not None)
        self.result.clear()
        self.error.hide()

    # -- actions ---------------------------------------------------------------------------------------------------
    @Slot()
    def save(self) -> bool:
        """Save the form (a renamed endpoint is saved under its new name, the old one removed)."""
        key: object = KEEP
        if self.key.text().strip():
            key = self.key.text().strip()
        elif self.forget_key.isChecked():
            key = None
        old = self._loaded
        endpoint = Endpoint(self.name.text(), self.url.text(), self.model.currentText(), self.timeout.value())
        try:
            if old is not None and old.name != endpoint.name.strip() and key is KEEP and old.has_key:
                key = self.store.api_key(old.name)  # the key moves with a rename
            saved = self.store.save(endpoint, api_key=key)
            if old is not None and old.name != saved.name:
                self.store.remove(old.name)
        except KnownError as exc:
            self._show_error(str(exc))
            return False
        self.reload(select=saved.name)
        where = {"keyring": "API key in the OS keyring", "file": "API key in a private file (0600)"}.get(
            saved.key_store, "no API key")
        self.result.setText(f"Saved {saved.name} ({where}). Its models: remote:{saved.name}/MODEL")
        self.changed.emit()
        return True

    @Slot()
    def remove_current(self) -> None:
        if self._loaded is None:
            return
        try:
            self.store.remove(self._loaded.name)
        except KnownError as exc:
            self._show_error(str(exc))
            return
        self.reload()
        self.changed.emit()

    @Slot()
    def test_connection(self) -> None:
        """Ask the server in the form (saved or not) for its models, off the GUI thread."""
        key: str | None = self.key.text().strip() or None
        if key is None and self._loaded is not None and self._loaded.has_key and not self.forget_key.isChecked():
            try:
                key = self.store.api_key(self._loaded.name)
            except KnownError as exc:
                self._show_error(str(exc))
                return
        self.error.hide()
        self.result.setText("Connecting…")
        self.test_button.setEnabled(False)
        self._probe_id = self.probe.probe(self.url.text(), key, self.name.text().strip())

    @Slot(int, object)
    def _on_probed(self, probe_id: int, outcome: object) -> None:
        if probe_id != self._probe_id:
            return  # an older test's late answer
        self.test_button.setEnabled(True)
        if isinstance(outcome, str):
            self.result.clear()
            self._show_error(outcome)
            return
        models = list(outcome) if isinstance(outcome, list) else []
        current = self.model.currentText()
        self.model.clear()
        self.model.addItems(models)
        self.model.setEditText(current or (models[0] if models else ""))
        shown = ", ".join(models[:6]) + (" …" if len(models) > 6 else "")
        self.result.setText(f"Connected: {len(models)} model{'s' * (len(models) != 1)}" + (f" ({shown})" if models
                                                                                           else ""))

    def _show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()

    def done(self, result: int) -> None:  # noqa: D102 - QDialog override: stop the probe thread with the dialog
        self.probe.shutdown()
        super().done(result)
