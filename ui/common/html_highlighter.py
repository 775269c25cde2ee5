"""Syntax colouring for the HTML source view: tags, attributes, strings, comments."""

from __future__ import annotations

import re

from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat, QTextDocument

from ui.common.theme import is_dark


def _fmt(colour: str, bold: bool = False, italic: bool = False) -> QTextCharFormat:
    f = QTextCharFormat()
    f.setForeground(QColor(colour))
    if bold:
        f.setFontWeight(QFont.Weight.Bold)
    f.setFontItalic(italic)
    return f


PATTERNS = (re.compile(r"</?[A-Za-z][\w-]*|/?>"), re.compile(r"\s[\w-]+(?==)"), re.compile(r"\"[^\"]*\"|'[^']*'"),
            re.compile(r"<!--.*?-->|<!DOCTYPE[^>]*>", re.IGNORECASE))
# Tags, attributes, strings, comments: for a light background, and for a dark one.
LIGHT = (_fmt("#1f4fb4", bold=True), _fmt("#8a4b08"), _fmt("#1d7a2e"), _fmt("#777777", italic=True))
DARK = (_fmt("#8ab4ff", bold=True), _fmt("#f0b070"), _fmt("#7bd88f"), _fmt("#9a9aa0", italic=True))


class HtmlHighlighter(QSyntaxHighlighter):
    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)

    def highlightBlock(self, text: str) -> None:  # noqa: N802 - Qt override
        for pattern, fmt in zip(PATTERNS, DARK if is_dark() else LIGHT, strict=True):
            for match in pattern.finditer(text):
                self.setFormat(match.start(), match.end() - match.start(), fmt)
