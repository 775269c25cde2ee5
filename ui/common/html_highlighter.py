"""Syntax colouring for the HTML source view: tags, attributes, strings, comments."""

from __future__ import annotations

import re

from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat, QTextDocument


def _fmt(colour: str, bold: bool = False, italic: bool = False) -> QTextCharFormat:
    f = QTextCharFormat()
    f.setForeground(QColor(colour))
    if bold:
        f.setFontWeight(QFont.Weight.Bold)
    f.setFontItalic(italic)
    return f


RULES = [
    (re.compile(r"</?[A-Za-z][\w-]*|/?>"), _fmt("#1f4fb4", bold=True)),
    (re.compile(r"\s[\w-]+(?==)"), _fmt("#8a4b08")),
    (re.compile(r"\"[^\"]*\"|'[^']*'"), _fmt("#1d7a2e")),
    (re.compile(r"<!--.*?-->|<!DOCTYPE[^>]*>", re.IGNORECASE), _fmt("#888888", italic=True)),
]


class HtmlHighlighter(QSyntaxHighlighter):
    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)

    def highlightBlock(self, text: str) -> None:  # noqa: N802 - Qt override
        for pattern, fmt in RULES:
            for match in pattern.finditer(text):
                self.setFormat(match.start(), match.end() - match.start(), fmt)
