"""The main window: a tab per mode, a model picker, the parameters panel and a status bar."""

from __future__ import annotations

import logging

from PySide6.QtCore import QEvent, Qt, QTimer, Slot
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QLabel,
    QMainWindow,
    QTabWidget,
    QWidget,
)
from sqlalchemy.exc import SQLAlchemyError

from playground.domain.models import ModelInfo, is_remote, looks_like_image_model, split_remote_id
from playground.errors import KnownError
from playground.models.embedded import EMBEDDED_ID
from playground.models.endpoints import EndpointStore
from playground.models.registry import Registry
from playground.store.records import Run
from playground.store.repository import SessionStore
from playground.sysinfo import human_bytes
from ui.common import settings
from ui.common.bridge import EngineBridge, Runner
from ui.common.model_drop import model_paths
from ui.common.params_panel import ParamsPanel
from ui.common.remote_models import RemoteModels
from ui.compare.tab import CompareTab
from ui.image.tab import ImageTab
from ui.inspect.tab import InspectTab, prompt_tab_inputs
from ui.layout.tab import LayoutTab
from ui.prompt.tab import PromptTab
from ui.sheet.tab import SheetTab
from ui.shell import session_files, sessions_sidebar, window_state
from ui.shell.adapters_dialog import AdaptersDialog
from ui.shell.endpoints_dialog import EndpointsDialog
from ui.shell.menus import build_menus
from ui.shell.model_menu import ModelMenu
from ui.shell.params_dock import ParamsDock
from ui.shell.sessions_panel import SessionsPanel
from ui.shell.sessions_sidebar import LAST_SESSION
from ui.shell.status_bar import EngineStatus

log = logging.getLogger("playground.ui")
DRAFT_DEBOUNCE_MS = 1000  # a crash loses at most about this much typing (plus the write)

# Start-up work that waits until the window has painted (the engine thread importing torch holds the GIL for
# stretches of ~0.2 s; started at once, it would hold up the first paint).
AFTER_FIRST_PAINT_MS = 150



class MainWindow(QMainWindow):
    def __init__(self, runner: Runner, registry: Registry | None = None, autoload: bool = True,
                 store: SessionStore | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Playground")
        self.registry = registry or Registry()
        self.bridge = EngineBridge(runner, self)
        notices: list[str] = []
        if store is None:
            store, notices = session_files.open_store()
        self.store = store

        self.model_picker = QComboBox()
        self.model_picker.setMinimumContentsLength(28)
        self.model_picker.setToolTip("The model every run uses; it loads in the background")
        self.model_picker.activated.connect(self._on_model_picked)
        self.model_menu = ModelMenu(self)
        self.setAcceptDrops(True)
        toolbar = self.addToolBar("Model")
        toolbar.setObjectName("model_toolbar")
        toolbar.setMovable(False)
        toolbar.addWidget(QLabel(" Model: "))
        toolbar.addWidget(self.model_picker)
        toolbar.addWidget(self.model_menu.button)

        # Each tab has its own parameters (only those it uses, its own defaults); the dock shows the current one's.
        panels = {cls: ParamsPanel(cls.params_spec) for cls in (PromptTab, LayoutTab, SheetTab, CompareTab)}
        self.params = panels[PromptTab]  # the Prompt tab's (what scripts and the self-test set)
        self.params_dock = ParamsDock(self)

        self.tabs = QTabWidget()
        self.tabs.setUsesScrollButtons(True)
        self.prompt_tab = PromptTab(self.bridge, self.params, self.current_model)
        self.tabs.addTab(self.prompt_tab, "Prompt")
        self.layout_tab = LayoutTab(self.bridge, panels[LayoutTab], self.current_model)
        self.tabs.addTab(self.layout_tab, "Layout → HTML")
        self.sheet_tab = SheetTab(panels[SheetTab], self.current_model)
        self.sheet_tab.message.connect(self._on_tab_message)
        self.sheet_tab.transfer.adapter_saved.connect(self._on_adapters_changed)
        self.tabs.addTab(self.sheet_tab, "Sheet")
        self.image_tab = ImageTab()
        self.tabs.addTab(self.image_tab, "Image")
        self.compare_tab = CompareTab(panels[CompareTab], self.current_model)
        self.tabs.addTab(self.compare_tab, "Compare")
        self.compare_tab.open_image_settings.connect(self._on_open_image_settings)
        self.inspect_tab = InspectTab(self.current_model, lambda: prompt_tab_inputs(self.prompt_tab))
        self.tabs.addTab(self.inspect_tab, "Inspect")
        self.model_picker.currentIndexChanged.connect(self.compare_tab.relabel)  # titles name the window's model
        self.setCentralWidget(self.tabs)
        # Tabs saved in sessions: each has mode, changed, run_ended, draft(), restore() and show_run().
        self.session_tabs = [self.prompt_tab, self.layout_tab, self.sheet_tab, self.image_tab, self.compare_tab,
                             self.inspect_tab]
        for tab in self.session_tabs:
            if tab.params_spec is not None:
                self.params_dock.add(tab, tab.params)
        self.tabs.currentChanged.connect(self._sync_params_dock)
        self.compare_tab.views.currentChanged.connect(self._sync_params_dock)

        status = self.engine_status = EngineStatus(self.statusBar(), self.bridge, on_loaded=self.refresh_models)
        self.progress, self.device_label, self.model_label = status.progress, status.device_label, status.model_label
        self.speed_label, self.memory_label = status.speed_label, status.memory_label

        self.sessions: SessionsPanel | None = None
        self.sessions_dock: QDockWidget | None = None
        self._draft_timer = QTimer(self, singleShot=True, interval=DRAFT_DEBOUNCE_MS)
        self._draft_timer.timeout.connect(self.save_drafts)
        if self.store is not None:
            self._build_sessions()
        build_menus(self)
        window_state.restore(self)
        self._sync_params_dock()
        for notice in notices:
            self.statusBar().showMessage(notice, 30000)

        # Remote endpoints' model lists arrive from a worker thread; the pickers fill in when they do.
        self.remote_models = RemoteModels(self)
        self.remote_models.listed.connect(self._on_remote_listed)
        self._remote_ids: list[str] = []
        self._model_infos: dict[str, ModelInfo] = {}  # the picker's local text models, by id
        self.endpoints_dialog: EndpointsDialog | None = None
        self.adapters_dialog: AdaptersDialog | None = None
        # The Hugging Face cache scan (and its imports) waits until the window is on screen.
        self.refresh_models(select=EMBEDDED_ID, include_hf_cache=False)
        QTimer.singleShot(AFTER_FIRST_PAINT_MS, self.refresh_models)
        self.remote_models.refresh()
        if autoload:
            # After the first paint: the window shows at once, torch loads behind it.
            QTimer.singleShot(AFTER_FIRST_PAINT_MS, lambda: self.bridge.load(self.current_model()))

    def set_precision(self, value: str) -> None:
        """Use ``value`` for local models from now on; the current model reloads at it."""
        if self.precision_menu.choose(value):
            self.statusBar().showMessage(f"Precision {value}: reloading {self.current_model()}", 10000)
            self.bridge.load(self.current_model())

    # -- sessions --------------------------------------------------------------------------------------------
    def _build_sessions(self) -> None:
        return sessions_sidebar.build_sessions(self)

    @property
    def current_session(self) -> int | None:
        return self.sessions.current_id if self.sessions else None

    @Slot()
    def save_drafts(self) -> None:
        """Save every tab's editors into the current session (debounced while typing; flushed on switch/quit)."""
        self._draft_timer.stop()
        if self.store is None or self.current_session is None or self._restoring:
            return
        try:
            for tab in self.session_tabs:
                if tab.mode not in self._unreadable:  # its stored draft stays as it was, not replaced by blanks
                    self.store.save_draft(self.current_session, tab.mode, tab.draft())
        except (KnownError, SQLAlchemyError) as exc:
            self.statusBar().showMessage(f"Could not save the draft: {exc}", 10000)

    _restoring = False
    _unreadable: list[str] = []  # modes whose part of the current session could not be restored

    @Slot(int)
    def _on_session_opened(self, session_id: int) -> None:
        assert self.store is not None
        settings.write(LAST_SESSION, session_id)  # the next launch opens it again
        self._restoring = True
        self._unreadable = unreadable = []
        try:
            draft = self.store.draft(session_id)
            for tab in self.session_tabs:
                try:
                    tab.restore(draft.get(tab.mode, {}), self.store.last_run(session_id, tab.mode))
                except Exception:  # noqa: BLE001 - one bad record (an import) must never break the window
                    log.exception("session %s: the %s tab could not restore it", session_id, tab.mode)
                    unreadable.append(tab.mode)
            self.setWindowTitle(f"{self.store.get(session_id).name} — Playground")
        finally:
            self._restoring = False
        self._draft_timer.stop()
        if self.sessions:
            self.sessions.show_notice(f"Part of this session could not be shown ({', '.join(unreadable)}): it holds "
                                      "data this version cannot read. The rest is open." if unreadable else "")

    @Slot(object)
    def _on_run_opened(self, run: Run) -> None:
        for tab in self.session_tabs:
            if tab.mode == run.mode:
                self.tabs.setCurrentWidget(tab)
                try:
                    tab.show_run(run)
                except Exception:  # noqa: BLE001 - as above: a bad record is a notice, not a crash
                    log.exception("run %s could not be shown", run.id)
                    self.statusBar().showMessage(f"Run {run.id} holds data this version cannot show", 15000)
                self._draft_timer.start()

    @Slot(object)
    def _on_run_ended(self, run: Run) -> None:
        if self.store is None or self.current_session is None:
            return
        try:
            self.store.add_run(self.current_session, run)
        except (KnownError, SQLAlchemyError) as exc:
            self.statusBar().showMessage(f"Could not save the run: {exc}", 15000)
            return
        self.save_drafts()
        if self.sessions:
            self.sessions.refresh()

    @Slot()
    def new_session(self) -> None:
        if self.sessions:
            self.sessions.new_session()

    # -- view --------------------------------------------------------------------------------------------------
    @Slot(bool)
    def set_full_screen(self, on: bool) -> None:
        self.showFullScreen() if on else self.showNormal()

    @Slot()
    def focus_session_search(self) -> None:
        """Ctrl+F: the sessions search box, its text selected (the panel comes back if it was closed)."""
        if self.sessions is None or self.sessions_dock is None:
            return
        self.sessions_dock.show()
        self.sessions.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.sessions.search.selectAll()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fit_params()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        QTimer.singleShot(0, self._fit_params)  # once the docks have their first widths

    def _fit_params(self) -> None:
        panel = self.params_dock.current()
        if panel is not None:
            self.params_dock.fit(panel)

    @Slot()
    def _sync_params_dock(self) -> None:
        """The Parameters dock shows the current tab's own panel, and hides where nothing uses it (the Image tab,
        Compare's image grid and layout variants); the sessions sidebar keeps its width either way."""
        tab = self.tabs.currentWidget()
        uses = tab is not self.compare_tab or self.compare_tab.views.currentIndex() == 0
        keep = self.sessions_dock.width() if self.sessions_dock is not None and self.sessions_dock.isVisible() else 0
        self.params_dock.follow(tab, uses)
        if keep:
            self.resizeDocks([self.sessions_dock], [keep], Qt.Orientation.Horizontal)

    # -- models ----------------------------------------------------------------------------------------------
    def current_model(self) -> str:
        return self.model_picker.currentData() or EMBEDDED_ID

    def refresh_models(self, select: str | None = None, include_hf_cache: bool = True) -> None:
        keep = select or self.current_model()
        self.model_picker.clear()
        ids = []
        self._model_infos = {}
        for info in self.registry.list(include_hf_cache=include_hf_cache):
            if info.kind != "text":
                continue
            self._model_infos[info.id] = info
            note = " (file missing)" if info.missing else "" if info.ready else " (prepared on first use)"
            size = f" · {human_bytes(info.size_bytes)}" if info.size_bytes else ""
            self.model_picker.addItem(f"{info.id} · {info.source}{size}{note}", info.id)
            ids.append(info.id)
        for model_id in self._remote_ids:  # what the servers listed, beyond each endpoint's default
            if model_id not in ids and not looks_like_image_model(model_id):
                self.model_picker.addItem(f"{model_id} · remote", model_id)
                ids.append(model_id)
        index = self.model_picker.findData(keep)
        if index < 0 and is_remote(keep) and split_remote_id(keep)[0] in {e.name for e in EndpointStore().list()}:
            # Its server did not list it this time (down for a moment?): keep it rather than switch silently.
            self.model_picker.addItem(f"{keep} · remote", keep)
            ids.append(keep)
            index = self.model_picker.count() - 1
        self.model_picker.setCurrentIndex(max(index, 0))
        self.compare_tab.set_model_choices(ids)

    def model_info(self, model_id: str) -> ModelInfo | None:
        """The registry's entry for a local text model in the picker, as its last refresh listed it."""
        return self._model_infos.get(model_id)

    # -- remote endpoints ----------------------------------------------------------------------------------------
    @Slot()
    def open_endpoints(self) -> EndpointsDialog:
        """Show the Endpoints dialog (not modal: the window keeps working while a connection is tested)."""
        if self.endpoints_dialog is None:
            self.endpoints_dialog = EndpointsDialog(parent=self)
            self.endpoints_dialog.changed.connect(self._on_endpoints_changed)
        self.endpoints_dialog.show()
        self.endpoints_dialog.raise_()
        return self.endpoints_dialog

    @Slot()
    def open_adapters(self) -> AdaptersDialog:
        """Show the fine-tuned adapters (BASE+name models) with a Delete button."""
        if self.adapters_dialog is None:
            self.adapters_dialog = AdaptersDialog(parent=self)
            self.adapters_dialog.changed.connect(self._on_adapters_changed)
        self.adapters_dialog.refresh()
        self.adapters_dialog.show()
        self.adapters_dialog.raise_()
        return self.adapters_dialog

    @Slot()
    def _on_adapters_changed(self) -> None:
        self.refresh_models()
        if self.adapters_dialog is not None and self.adapters_dialog.isVisible():
            self.adapters_dialog.refresh()

    @Slot()
    def _on_endpoints_changed(self) -> None:
        self.refresh_models()
        self.remote_models.refresh()

    @Slot(object)
    def _on_remote_listed(self, listing: object) -> None:
        """Every endpoint's models (or why not): text ones go to the pickers, image ones to the Image tab."""
        if not isinstance(listing, dict):
            self.statusBar().showMessage(f"Endpoints: {listing}", 15000)
            return
        ids: list[str] = []
        for name, models in listing.items():
            if isinstance(models, list):
                ids += models
            else:
                self.statusBar().showMessage(f"Endpoint {name}: {models}", 15000)
        self._remote_ids = ids
        self.refresh_models()
        self.image_tab.set_remote_models([m for m in ids if looks_like_image_model(m)])

    @Slot(int)
    def _on_model_picked(self, _index: int) -> None:
        self.bridge.load(self.current_model())

    def add_model(self, path: str) -> None:
        self.model_menu.add(path)

    def remove_current_model(self) -> None:
        self.model_menu.remove_current()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if model_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        paths = model_paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        for path in paths:  # each registered; the last one is chosen and loads
            self.model_menu.add(path)

    @Slot(dict)
    def _on_open_image_settings(self, settings: dict) -> None:
        """A compare-grid cell clicked: its settings go to the Image tab, which comes to the front."""
        self.image_tab.open_cell(settings)
        self.tabs.setCurrentWidget(self.image_tab)

    @Slot(str)
    def _on_tab_message(self, message: str) -> None:
        self.statusBar().showMessage(message, 8000)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        action = getattr(self, "full_screen_action", None)
        if event.type() == QEvent.Type.WindowStateChange and action is not None:
            action.blockSignals(True)  # full screen left by other means (the window manager, a restore)
            action.setChecked(self.isFullScreen())
            action.blockSignals(False)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        window_state.save(self)
        self.engine_status.stop()
        self.remote_models.shutdown()
        if self.endpoints_dialog is not None:
            self.endpoints_dialog.close()
        if self.adapters_dialog is not None:
            self.adapters_dialog.close()
        self.save_drafts()
        self.model_menu.shutdown()
        self.bridge.shutdown()  # stops a running generation within one token, then joins the worker
        self.sheet_tab.shutdown()
        self.layout_tab.shutdown()
        self.image_tab.shutdown()
        self.compare_tab.shutdown()
        self.inspect_tab.shutdown()
        if self.store is not None:
            self.store.db.dispose()
        super().closeEvent(event)
