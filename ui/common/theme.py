"""Light, dark or the system's colour scheme, and colours that stay readable on both.

Qt ≥ 6.8 can ask the platform for a scheme (``QStyleHints.setColorScheme``), but a platform theme without one
(plain X11, Xvfb, many Linux desktops) ignores the request: so light and dark also set the Fusion style with a
palette of their own, and "system" follows ``styleHints().colorScheme()`` with the same palettes.
Widgets colour themselves from palette roles; the few explicit colours (token probabilities, status lines) come
from here and are chosen for the current palette.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

THEMES = {"system": "System", "light": "Light", "dark": "Dark"}


def is_dark(palette: QPalette | None = None) -> bool:
    """True when the palette's window is dark (whatever made it so: our theme or the platform's)."""
    palette = palette or QGuiApplication.palette()
    return palette.color(QPalette.ColorRole.Window).lightnessF() < 0.5


def system_prefers_dark() -> bool:
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply_theme(app: QApplication, theme: str) -> None:
    """Use ``theme`` (system | light | dark) for the whole app; widgets repaint at once."""
    theme = theme if theme in THEMES else "system"
    hints = app.styleHints()
    scheme = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}.get(theme)
    if hasattr(hints, "setColorScheme"):  # Qt >= 6.8: native dialogs and title bars follow where they can
        if scheme is None:
            hints.unsetColorScheme()
        else:
            hints.setColorScheme(scheme)
    dark = theme == "dark" or (theme == "system" and system_prefers_dark())
    if theme == "system" and not dark:
        app.setPalette(app.style().standardPalette())
        return
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")  # native styles (Windows) ignore a palette
    app.setPalette(dark_palette() if dark else light_palette())


def light_palette() -> QPalette:
    return _palette(window="#efefef", base="#ffffff", alt="#f5f5f5", text="#1b1b1b", button="#e8e8e8",
                    mid="#b8b8b8", placeholder="#6d6d6d", highlight="#2f6fd6", link="#1a5fb4", tooltip="#ffffe8")


def dark_palette() -> QPalette:
    return _palette(window="#2b2b2d", base="#1e1e20", alt="#262628", text="#e6e6e6", button="#3a3a3d",
                    mid="#5a5a5e", placeholder="#a0a0a6", highlight="#3d7bd9", link="#7fb0ff", tooltip="#3a3a3d")


def _palette(window: str, base: str, alt: str, text: str, button: str, mid: str, placeholder: str, highlight: str,
             link: str, tooltip: str) -> QPalette:
    p = QPalette()
    role = QPalette.ColorRole
    colours = {role.Window: window, role.WindowText: text, role.Base: base, role.AlternateBase: alt,
               role.Text: text, role.Button: button, role.ButtonText: text, role.Mid: mid, role.Dark: mid,
               role.Midlight: button, role.Light: alt, role.Shadow: "#000000", role.PlaceholderText: placeholder,
               role.Highlight: highlight, role.HighlightedText: "#ffffff", role.Link: link, role.LinkVisited: link,
               role.ToolTipBase: tooltip, role.ToolTipText: text, role.BrightText: "#ff5555"}
    for r, colour in colours.items():
        p.setColor(r, QColor(colour))
    disabled = QColor(placeholder)
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, r, disabled)
    return p


# -- colours that mean something ------------------------------------------------------------------------------
def probability_colour(p: float, dark: bool | None = None) -> QColor:
    """Red (unlikely) through yellow to green (likely): light pastels behind dark text in a light theme, deep
    tones behind light text in a dark one."""
    dark = is_dark() if dark is None else dark
    p = max(0.0, min(1.0, p))
    hue = 120.0 * p / 360.0  # 0 = red, 1/3 = green
    return QColor.fromHslF(hue, 0.55, 0.28) if dark else QColor.fromHslF(hue, 0.75, 0.82)


def no_probability_colour(dark: bool | None = None) -> QColor:
    """Behind a token whose probability a (remote) server did not send."""
    return QColor("#4a4a4e") if (is_dark() if dark is None else dark) else QColor("#e4e4e4")


def text_on(background: QColor) -> QColor:
    """Black or white, whichever reads better on ``background``."""
    return QColor("#000000") if background.lightnessF() >= 0.5 else QColor("#ffffff")


def status_colour(kind: str, dark: bool | None = None) -> QColor:
    """Text colour of a one-line verdict: ``ok`` (green), ``warn`` (amber) or ``bad`` (red), readable on the
    window colour of either theme."""
    dark = is_dark() if dark is None else dark
    light_theme = {"ok": "#1d7a2e", "warn": "#8a5a00", "bad": "#a3271c"}
    dark_theme = {"ok": "#7bd88f", "warn": "#f0c060", "bad": "#ff8a7a"}
    return QColor((dark_theme if dark else light_theme)[kind])


def contrast_ratio(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio of two colours (1 to 21; 4.5 is the minimum for body text)."""

    def luminance(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)
