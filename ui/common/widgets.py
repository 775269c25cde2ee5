"""Small widgets every tab uses the same way: preset pickers, hint lines, message banners, plain-text labels.

QLabel (and tooltips) guess: text that looks like HTML is rendered as HTML, so a model's "unclosed <div>, <p>"
shows as "unclosed , ". Every label or tooltip that can show model or user text is plain (``plain_label``,
``plain_tip``).
"""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QMimeData, QSize, Qt
from PySide6.QtGui import QPalette, QResizeEvent
from PySide6.QtWidgets import QComboBox, QLabel, QMessageBox, QPlainTextEdit, QSizePolicy, QWidget

from ui.common.model_drop import model_paths
from ui.common.theme import status_colour

BANNER_STYLES = {
    "error": "background: #fde2e1; color: #8a1c13; padding: 6px; border-radius: 4px;",
    "notice": "background: #fff4d6; color: #5c4400; padding: 6px; border-radius: 4px;",
}


class TextEditor(QPlainTextEdit):
    """A plain-text editor that leaves a dropped model file or folder to the window (which adds it) instead of
    pasting its path into the text."""

    def canInsertFromMimeData(self, source: QMimeData) -> bool:  # noqa: N802 - Qt override
        return not model_paths(source) and super().canInsertFromMimeData(source)


def text_editor(placeholder: str) -> TextEditor:
    """An editor for a prompt or source text: Tab moves focus on (the fields are typed, not indented)."""
    editor = TextEditor()
    editor.setPlaceholderText(placeholder)
    editor.setTabChangesFocus(True)
    return editor


def preset_combo(names: list[str]) -> QComboBox:
    """A "Presets…" picker: item 0 is the prompt, item i is ``names[i - 1]``."""
    combo = QComboBox()
    # As wide as "Presets…" plus a little, not as the longest name (the list itself shows names in full).
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(16)
    combo.addItem("Presets…")
    for name in names:
        combo.addItem(name)
    return combo


def plain_label(text: str = "", wrap: bool = False, selectable: bool = False) -> QLabel:
    """A label that shows its text as written ("<div>" stays visible), never as HTML."""
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    label.setWordWrap(wrap)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class StatusLabel(QLabel):
    """A plain, wrapping verdict line coloured by its kind (ok, warn, bad), in colours of the current theme."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.kind = ""

    def set_status(self, text: str, kind: str = "") -> None:
        self.kind = kind
        self.setText(text)
        self._colour()

    def _colour(self) -> None:
        palette = QPalette()  # nothing set: every role inherited from the theme …
        if self.kind:  # … but the verdict's colour
            palette.setColor(QPalette.ColorRole.WindowText, status_colour(self.kind))
        self.setPalette(palette)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and not getattr(self, "_recolouring", False):
            self._recolouring = True  # setPalette below sends another PaletteChange
            try:
                self._colour()
            finally:
                self._recolouring = False


class ElidedLabel(QLabel):
    """One line of plain text that never widens its window: shortened with "…" when there is no room, the whole
    text in the tooltip (a model path in the status bar once made the window grow after each run)."""

    def __init__(self, text: str = "", parent: QWidget | None = None, minimum: int = 60) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self._full = ""
        self._minimum = minimum
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)  # shrinks to minimum
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt override
        self._full = text
        self.setToolTip(plain_tip(text) if text else "")
        self._elide()
        self.updateGeometry()

    def text(self) -> str:
        return self._full

    def clear(self) -> None:
        self.setText("")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(self.fontMetrics().horizontalAdvance(self._full) + 4, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(min(self._minimum, self.sizeHint().width()), super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideMiddle, max(self.width(), 1))
        super().setText(shown)


def plain_tip(text: str) -> str:
    """A tooltip that shows ``text`` as written (tooltips guess rich text like labels); line breaks kept."""
    return f"<p style='white-space:pre-wrap'>{html.escape(text)}</p>" if text else ""


def hint_label(text: str = "") -> QLabel:
    """Muted, wrapping help text."""
    label = plain_label(text, wrap=True)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # follows the theme (a style sheet would not)
    return label


def banner(kind: str = "error") -> QLabel:
    """A hidden, selectable message strip for errors or notices; show it with setText + show."""
    label = QLabel()
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)  # messages quote user and model text: "<div>" stays visible
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setStyleSheet(BANNER_STYLES[kind])
    label.hide()
    return label


def warn(parent: QWidget, title: str, text: str) -> QMessageBox:
    """A warning shown whole (a long one is cut off in the status bar), dismissed with Close or Esc, that does not
    block the window; a newer one replaces the one before. Plain text: it may quote a file's name or contents."""
    for old in parent.findChildren(QMessageBox, "warning"):
        old.close()
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Close, parent)
    box.setObjectName("warning")
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setWindowModality(Qt.WindowModality.NonModal)
    box.show()
    return box
