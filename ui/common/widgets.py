"""Small widgets every tab uses the same way: preset pickers, hint lines and message banners."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLabel

BANNER_STYLES = {
    "error": "background: #fde2e1; color: #8a1c13; padding: 6px; border-radius: 4px;",
    "notice": "background: #fff4d6; color: #5c4400; padding: 6px; border-radius: 4px;",
}


def preset_combo(names: list[str]) -> QComboBox:
    """A "Presets…" picker: item 0 is the prompt, item i is ``names[i - 1]``."""
    combo = QComboBox()
    combo.addItem("Presets…")
    for name in names:
        combo.addItem(name)
    return combo


def hint_label(text: str = "") -> QLabel:
    """Muted, wrapping help text."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet("color: palette(mid);")
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
