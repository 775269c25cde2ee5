"""The sessions sidebar: search, new / rename / duplicate / delete (with undo), and the run history."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from playground.store.records import Run, SessionInfo
from playground.store.repository import SessionStore
from ui.common.widgets import banner, plain_label, plain_tip

log = logging.getLogger("playground.ui")

UNDO_SECONDS = 15


def local_time(utc_naive: datetime) -> str:
    """Stored times are naive UTC; show them in the user's time zone."""
    return utc_naive.replace(tzinfo=UTC).astimezone().strftime("%Y-%m-%d %H:%M")


def run_output_preview(run: Run, width: int = 30) -> str:
    """The start of a run's first output, on one line ("" when it has none this version can read)."""
    completions = run.outputs.get("completions")
    first = completions[0] if isinstance(completions, list) and completions else {}
    text = first.get("text", "") if isinstance(first, dict) else ""
    text = " ".join(str(text)[:200].split())
    return text if len(text) <= width else text[: width - 1] + "…"


class SessionsPanel(QWidget):
    about_to_switch = Signal()  # the current session is about to change: save what belongs to it
    session_opened = Signal(int)
    run_opened = Signal(object)  # Run
    session_deleted = Signal(int)

    def __init__(self, store: SessionStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.current_id: int | None = None
        self._deleted: int | None = None

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search sessions and their runs…")
        self.search.setClearButtonEnabled(True)
        self._search_timer = QTimer(self, singleShot=True, interval=200)
        self._search_timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.list = QListWidget()
        self.list.itemActivated.connect(self._on_session_activated)
        self.list.currentItemChanged.connect(self._on_session_current_changed)

        self.new_button = QPushButton("New")
        self.new_button.setToolTip("New session (Ctrl+N, from the File menu)")
        self.new_button.clicked.connect(self.new_session)
        self.rename_button = QPushButton("Rename")
        self.rename_button.setToolTip("Rename (F2)")
        self.rename_button.clicked.connect(self.rename_current)
        self.duplicate_button = QPushButton("Copy")
        self.duplicate_button.setToolTip("Duplicate this session with all its runs")
        self.duplicate_button.clicked.connect(self.duplicate_current)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete (undo is offered for a while)")
        self.delete_button.clicked.connect(self.delete_current)

        self.undo_label = plain_label(wrap=True)  # quotes the session's name
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.undo_delete)
        self._undo_timer = QTimer(self, singleShot=True, interval=UNDO_SECONDS * 1000)
        self._undo_timer.timeout.connect(self._hide_undo)

        self.notice = banner("notice")
        self.history = QListWidget()
        self.history.setToolTip("Runs of this session, newest first; double-click or Enter re-opens one in the editors")
        self.history.itemActivated.connect(self._on_run_activated)
        for widget in (self.list, self.history):
            widget.setAlternatingRowColors(True)
            # Two lines an entry, whatever the sidebar's width (wrapped, a history entry took 3-4): long names and
            # titles end in "…", the tooltip has them whole.
            widget.setWordWrap(False)
            widget.setTextElideMode(Qt.TextElideMode.ElideRight)
            widget.setUniformItemSizes(True)
            widget.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # elide, never scroll

        buttons = QGridLayout()  # two rows keep the sidebar narrow
        for i, b in enumerate((self.new_button, self.rename_button, self.duplicate_button, self.delete_button)):
            buttons.addWidget(b, i // 2, i % 2)
        undo = QHBoxLayout()
        undo.addWidget(self.undo_label, 1)
        undo.addWidget(self.undo_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 2)
        layout.addLayout(buttons)
        layout.addLayout(undo)
        layout.addWidget(self.notice)
        layout.addWidget(QLabel("<b>History</b>"))
        layout.addWidget(self.history, 3)
        self._hide_undo()

        QShortcut(QKeySequence(Qt.Key.Key_F2), self.list, self.rename_current)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.list, self.delete_current)

    # -- listing ---------------------------------------------------------------------------------------------
    @Slot()
    def refresh(self) -> None:
        sessions = self.store.list(self.search.text())
        self.list.blockSignals(True)
        self.list.clear()
        for s in sessions:
            item = QListWidgetItem(f"{s.name}\n{local_time(s.updated_at)} · {s.run_count} runs")
            item.setData(Qt.ItemDataRole.UserRole, s.id)
            item.setToolTip(plain_tip(s.name))
            self.list.addItem(item)
            if s.id == self.current_id:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        self.refresh_history()

    def refresh_history(self) -> None:
        self.history.clear()
        if self.current_id is None:
            return
        for run in reversed(self.store.runs(self.current_id)):
            try:
                when = local_time(run.created_at) if run.created_at else ""
                answer = run_output_preview(run)
                item = QListWidgetItem(f"{when[11:]} · {run.mode} · {run.status} · {run.model_id[:80]}\n"
                                       f"{run.title(40)}" + (f"  →  {answer}" if answer else ""))
                tip = f"{run.title(400)}\n{run.model_id[:200]} · {when}" + (f"\n{run.error[:500]}" if run.error else "")
                item.setToolTip(plain_tip(tip))
            except Exception:  # noqa: BLE001 - one unreadable run (an old import) must not hide the others
                log.exception("run %s cannot be listed", run.id)
                item = QListWidgetItem(f"{run.mode} run {run.id} · this version cannot show it")
            item.setData(Qt.ItemDataRole.UserRole, run.id)
            self.history.addItem(item)

    def show_notice(self, text: str) -> None:
        """A note about the current session (e.g. part of it could not be shown); cleared on the next switch."""
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def select(self, session_id: int) -> None:
        """Make ``session_id`` current and tell the window to open it."""
        self.about_to_switch.emit()
        self.current_id = session_id
        self.refresh()
        self.session_opened.emit(session_id)

    # -- actions ---------------------------------------------------------------------------------------------
    @Slot()
    def new_session(self) -> SessionInfo:
        info = self.store.create(f"Session {datetime.now():%Y-%m-%d %H:%M}")
        self.search.clear()
        self.select(info.id)
        return info

    @Slot()
    def rename_current(self) -> None:
        if self.current_id is None:
            return
        name, ok = QInputDialog.getText(self, "Rename session", "Name:", text=self.store.get(self.current_id).name)
        if ok and name.strip():
            self.rename(self.current_id, name)

    def rename(self, session_id: int, name: str) -> None:
        self.store.rename(session_id, name)
        self.refresh()

    @Slot()
    def duplicate_current(self) -> None:
        if self.current_id is not None:
            self.select(self.store.duplicate(self.current_id).id)

    @Slot()
    def delete_current(self) -> None:
        if self.current_id is None:
            return
        deleted = self.current_id
        name = self.store.get(deleted).name
        self.about_to_switch.emit()  # save its draft first, so undo brings everything back
        self.store.delete(deleted)
        self.current_id = None
        self._deleted = deleted
        self.undo_label.setText(f"Deleted “{name}”.")
        self.undo_label.show()
        self.undo_button.show()
        self._undo_timer.start()
        self.session_deleted.emit(deleted)
        remaining = self.store.list()
        if remaining:
            self.select(remaining[0].id)
        else:
            self.new_session()

    @Slot()
    def undo_delete(self) -> None:
        if self._deleted is None:
            return
        restored, self._deleted = self._deleted, None
        self.store.restore(restored)
        self._hide_undo()
        self.select(restored)

    @Slot()
    def _hide_undo(self) -> None:
        self.undo_label.hide()
        self.undo_button.hide()

    @Slot(QListWidgetItem)
    def _on_session_activated(self, item: QListWidgetItem) -> None:
        self._open_item(item)

    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_session_current_changed(self, item: QListWidgetItem | None, _previous: object) -> None:
        if item is not None:
            self._open_item(item)

    def _open_item(self, item: QListWidgetItem) -> None:
        session_id = int(item.data(Qt.ItemDataRole.UserRole))
        if session_id != self.current_id:
            self.about_to_switch.emit()
            self.current_id = session_id
            self.refresh_history()
            self.session_opened.emit(session_id)

    @Slot(QListWidgetItem)
    def _on_run_activated(self, item: QListWidgetItem) -> None:
        run: Run = self.store.get_run(int(item.data(Qt.ItemDataRole.UserRole)))
        self.run_opened.emit(run)
