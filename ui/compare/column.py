"""One text column of the Compare tab: model + settings editor, streamed output with probability colours,
the words that diverge from the reference column underlined, and the column's speed and confidence."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QPalette, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QCompleter,
    QFrame,
    QHBoxLayout,
    QLineEdit,
    QRadioButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from playground.domain.text import TokenEvent
from playground.errors import ParameterError
from playground.tasks.compare import WordDiff, format_column, parse_column
from ui.common.theme import status_colour
from ui.common.token_view import OutputView
from ui.common.widgets import StatusLabel, plain_label


class CompareColumn(QFrame):
    changed = Signal()
    duplicate_requested = Signal(object)  # self
    remove_requested = Signal(object)  # self
    rerun_requested = Signal(object)  # self

    def __init__(self, spec: dict[str, Any] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumWidth(250)
        self.reference = QRadioButton("reference")
        self.reference.setToolTip("Other columns underline the words where they differ from this one")
        self.title = plain_label(wrap=True)  # model ids and settings as typed
        self.title.setStyleSheet("font-weight: bold;")
        dup = QToolButton(text="Duplicate")
        dup.setToolTip("Duplicate this column (then change one thing)")
        dup.clicked.connect(lambda: self.duplicate_requested.emit(self))
        rerun = QToolButton(text="Re-run")
        rerun.setToolTip("Run only this column again (after changing it); the others keep their outputs")
        rerun.clicked.connect(lambda: self.rerun_requested.emit(self))
        self.rerun_button = rerun
        remove = QToolButton(text="✕")
        remove.setToolTip("Remove this column")
        remove.clicked.connect(lambda: self.remove_requested.emit(self))
        self.model = QLineEdit()
        self.model.setPlaceholderText("model (empty: the window's model; remote:ENDPOINT/MODEL)")
        self.model.setToolTip("This column's model: empty for the model picked at the top of the window, a model "
                              "id or folder, or remote:ENDPOINT/MODEL")
        self.settings = QLineEdit()
        self.settings.setPlaceholderText("temperature=0.7,seed=3 (empty: the shared parameters)")
        self.settings.setToolTip("key=value pairs that override the shared parameters panel: temperature, top_p, "
                                 "top_k, max_new_tokens, repetition_penalty, seed, stop (a|b)")
        self.output = OutputView()
        self.output.setPlaceholderText("Run all to fill this column.")
        self.stats = plain_label("not run", wrap=True)
        self.stats.setMinimumHeight(2 * self.stats.fontMetrics().lineSpacing() + 4)
        self.stats.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.problem = StatusLabel()
        self.problem.hide()

        head = QHBoxLayout()  # the title gets its own line above, so it is never cut
        head.setSpacing(2)
        head.addWidget(self.reference)
        head.addStretch(1)
        for button in (rerun, dup, remove):
            button.setAutoRaise(True)  # compact: the column keeps its width for the text
            head.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addLayout(head)
        layout.addWidget(self.model)
        layout.addWidget(self.settings)
        layout.addWidget(self.problem)
        layout.addWidget(self.output, 1)
        layout.addWidget(self.stats)
        self.model.textChanged.connect(self._on_edited)
        self.settings.textChanged.connect(self._on_edited)
        self.result: dict[str, Any] | None = None  # the complete --json object of the last run
        self._diff: WordDiff | None = None
        if spec:
            self.set_spec(spec)

    # -- the spec ----------------------------------------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        """The column's own keys (raises ParameterError when the settings line is malformed)."""
        spec = parse_column(self.settings.text())
        spec.pop("model", None)
        model = self.model.text().strip()
        return {"model": model, **spec} if model else spec

    def set_spec(self, spec: dict[str, Any]) -> None:
        self.model.setText(str(spec.get("model") or ""))
        self.settings.setText(format_column(spec, skip_model=True))

    def set_model_choices(self, model_ids: list[str]) -> None:
        """Complete the model field from these ids (any substring matches: "remote:" lists the remote ones)."""
        completer = QCompleter(model_ids, self.model)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.model.setCompleter(completer)

    def set_title(self, text: str) -> None:
        self.title.setText(text)

    @Slot()
    def _on_edited(self) -> None:
        try:
            self.spec()
            self.problem.hide()
        except ParameterError as exc:
            self.problem.set_status(str(exc), "bad")
            self.problem.show()
        self.changed.emit()

    # -- output ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.output.clear_output()
        self.result = None
        self._diff = None
        self.stats.setText("running…")
        self.setStyleSheet("CompareColumn { border: 2px solid #3b82f6; }")

    def append_tokens(self, events: list[TokenEvent]) -> None:
        self.output.append_tokens(events)

    def finish(self, result: dict[str, Any], stats: str) -> None:
        self.setStyleSheet("")
        self.result = result
        if "error" in result:
            self.stats.setText(f"failed: {result['error']}")
            return
        self.stats.setText(stats + (" · stopped" if result.get("finish_reason") == "cancelled" else ""))

    def mark_waiting(self) -> None:
        self.stats.setText("waiting…")

    def text(self) -> str:
        return self.output.toPlainText()

    def set_show_probabilities(self, on: bool) -> None:
        self.output.set_show_probabilities(on)
        self.apply_diff(self._diff)  # re-colouring resets the underline

    def apply_diff(self, diff: WordDiff | None) -> None:
        """Underline (red, wavy) the words that differ from the reference; None clears the marks."""
        doc_len = len(self.output.toPlainText())
        cursor = QTextCursor(self.output.document())
        clear = QTextCharFormat()
        clear.setUnderlineStyle(QTextCharFormat.UnderlineStyle.NoUnderline)
        clear.setForeground(self.palette().text())
        cursor.setPosition(0)
        cursor.setPosition(doc_len, QTextCursor.MoveMode.KeepAnchor)
        cursor.mergeCharFormat(clear)
        self._diff = diff
        if diff is None:
            return
        mark = QTextCharFormat()
        mark.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
        colour = status_colour("bad")
        mark.setUnderlineColor(colour)
        mark.setForeground(colour)
        for start, end in diff.spans:
            cursor.setPosition(min(start, doc_len))
            cursor.setPosition(min(end, doc_len), QTextCursor.MoveMode.KeepAnchor)
            cursor.mergeCharFormat(mark)

    def diff_marked_text(self) -> list[str]:
        """The words currently marked as diverging (what a user sees underlined)."""
        text = self.text()
        return [text[a:b] for a, b in self._diff.spans] if self._diff else []

    def set_confident(self, on: bool) -> None:
        self.title.setToolTip("highest mean token log-probability" if on else "")
        text = self.title.text().removesuffix("  ★")
        self.title.setText(text + ("  ★" if on else ""))
        self.title.setAlignment(Qt.AlignmentFlag.AlignLeft)
