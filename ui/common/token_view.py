"""The output pane: streamed text, optionally coloured by each token's probability, top-5 on hover."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, Signal
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QTextEdit, QToolTip, QWidget

from playground.domain.text import Alternative, TokenEvent
from ui.common.theme import no_probability_colour, probability_colour, text_on

__all__ = ["OutputView", "alternatives_html", "probability_colour"]


@dataclass
class _Span:
    start: int
    end: int
    event: TokenEvent


NOT_PROVIDED = "not provided by this server"
NO_PROBABILITY = no_probability_colour(dark=False)  # a token whose probability the (remote) server did not send


def _is_chosen(alt: Alternative, event: TokenEvent) -> bool:
    # Remote servers send texts, not ids (-1): match those by text.
    return alt.token_id == event.token_id if event.token_id >= 0 and alt.token_id >= 0 else alt.text == event.text


def alternatives_html(event: TokenEvent) -> str:
    """The hover table: the chosen token and the model's top alternatives with percentages."""
    if event.logprob is None:
        return f"<b>{html.escape(repr(event.text))}</b> &nbsp; probability {NOT_PROVIDED}"
    rows = []
    for alt in event.top:
        mark = "<b>" if _is_chosen(alt, event) else ""
        end = "</b>" if mark else ""
        rows.append(f"<tr><td>{mark}{html.escape(repr(alt.text))}{end}</td>"
                    f"<td align='right'>{mark}{math.exp(alt.logprob):.1%}{end}</td></tr>")
    head = (f"<b>{html.escape(repr(event.text))}</b> &nbsp; p = {math.exp(event.logprob):.1%} "
            f"(log p = {event.logprob:.2f})")
    if not event.top:
        return f"{head}<br>alternatives {NOT_PROVIDED}"
    return f"{head}<table cellspacing='4'>{''.join(rows)}</table>"


class OutputView(QTextEdit):
    """Read-only, rich-text output that knows which characters each token produced."""

    token_clicked = Signal(object, QPoint)  # TokenEvent, global position: a click on a token (not a selection)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setAcceptRichText(False)
        self.setMouseTracking(True)
        self.viewport().installEventFilter(self)
        self._spans: list[_Span] = []
        self._show_probabilities = False
        self.click_hint = ""  # added under the hover table when a click on a token does something
        self.setPlaceholderText("The completion appears here as it is generated.")

    # -- content ---------------------------------------------------------------------------------------
    def clear_output(self) -> None:
        self._spans.clear()
        self.clear()

    def append_plain(self, text: str) -> None:
        """Text that is not a token (a separator between completions)."""
        cursor = self._end_cursor()
        cursor.insertText(text, QTextCharFormat())

    def append_tokens(self, events: list[TokenEvent]) -> None:
        cursor = self._end_cursor()
        for event in events:
            start = cursor.position()
            cursor.insertText(event.text, self._format(event))
            self._spans.append(_Span(start, cursor.position(), event))
        self.ensureCursorVisible()

    @property
    def tokens(self) -> list[TokenEvent]:
        return [s.event for s in self._spans]

    def set_show_probabilities(self, on: bool) -> None:
        """Re-colour every token already shown (and those to come)."""
        self._show_probabilities = on
        cursor = QTextCursor(self.document())
        for span in self._spans:
            cursor.setPosition(span.start)
            cursor.setPosition(span.end, QTextCursor.MoveMode.KeepAnchor)
            cursor.setCharFormat(self._format(span.event))

    def token_at(self, position: int) -> TokenEvent | None:
        for span in self._spans:
            if span.start <= position < span.end:
                return span.event
        return None

    def background_at(self, position: int) -> QColor:
        cursor = QTextCursor(self.document())
        cursor.setPosition(position + 1)
        return cursor.charFormat().background().color()

    # -- hover -----------------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if watched is self.viewport() and event.type() == QEvent.Type.ToolTip:
            pos = event.pos()
            token = self.token_at(self.cursorForPosition(pos).position())
            if token is not None:
                hint = f"<br><i>{html.escape(self.click_hint)}</i>" if self.click_hint and token.top else ""
                QToolTip.showText(event.globalPos(), alternatives_html(token) + hint, self.viewport())
            else:
                QToolTip.hideText()
            return True
        if (watched is self.viewport() and event.type() == QEvent.Type.MouseButtonRelease
                and event.button() == Qt.MouseButton.LeftButton and not self.textCursor().hasSelection()):
            token = self.token_at(self.cursorForPosition(event.position().toPoint()).position())
            if token is not None:
                self.token_clicked.emit(token, event.globalPosition().toPoint())
        return super().eventFilter(watched, event)

    def _format(self, event: TokenEvent) -> QTextCharFormat:
        fmt = QTextCharFormat()
        if self._show_probabilities:
            colour = (no_probability_colour() if event.logprob is None
                      else probability_colour(math.exp(event.logprob)))
            fmt.setBackground(colour)
            fmt.setForeground(text_on(colour))  # readable whatever the theme's text colour
        else:
            fmt.setBackground(Qt.GlobalColor.transparent)
            fmt.setForeground(self.palette().text())
        return fmt

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # the theme changed: colours for the new one
            self.set_show_probabilities(self._show_probabilities)

    def _end_cursor(self) -> QTextCursor:
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        return cursor
