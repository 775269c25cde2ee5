"""Attention weights as pixels: one colour scale for the token strip, the head thumbnails and the big matrix.

Weights are shaded by their square root: attention is often a few large weights and many small ones, and a
linear scale hides the small ones (hover shows the exact numbers). Masked cells (a token cannot see the future)
are a light grey, apart from white (a weight of zero that the model could have given).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtGui import QColor, QHelpEvent, QImage
from PySide6.QtWidgets import QToolTip, QWidget

LOW = np.array([255, 255, 255], dtype=np.float32)  # weight 0
HIGH = np.array([8, 48, 107], dtype=np.float32)  # weight 1 (dark blue)
MASKED = (228, 228, 228)


def weight_colour(w: float) -> QColor:
    """The shade of one weight in [0, 1]."""
    v = float(np.sqrt(min(max(w, 0.0), 1.0)))
    r, g, b = (LOW + (HIGH - LOW) * v).astype(int).tolist()
    return QColor(r, g, b)


def text_colour(w: float) -> QColor:
    """Black or white, whichever reads on ``weight_colour(w)``."""
    return QColor("white") if np.sqrt(max(w, 0.0)) > 0.55 else QColor("#202020")


def attention_image(matrix: np.ndarray, size: int | None = None) -> QImage:
    """[T, T] weights (row = query, column = key) as an RGB image, T × T or block-averaged down to ``size``."""
    t = matrix.shape[0]
    weights = np.clip(matrix.astype(np.float32), 0.0, 1.0)
    masked = np.triu(np.ones((t, t), dtype=bool), k=1)
    if size is not None and t > size:
        weights, masked = _shrink(weights, size), _shrink(masked.astype(np.float32), size) > 0.5
    rgb = LOW + (HIGH - LOW) * np.sqrt(weights)[..., None]
    rgb[masked] = MASKED
    pixels = np.ascontiguousarray(rgb.astype(np.uint8))
    h, w = pixels.shape[:2]
    return QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()  # copy: own the buffer


def _shrink(a: np.ndarray, size: int) -> np.ndarray:
    """Average ``a`` [T, T] over a size × size grid of (nearly equal) blocks."""
    edges = np.linspace(0, a.shape[0], size + 1).astype(int)
    rows = np.add.reduceat(a, edges[:-1], axis=0) / np.diff(edges)[:, None]
    return np.add.reduceat(rows, edges[:-1], axis=1) / np.diff(edges)[None, :]


def visible(text: str) -> str:
    """A token's text with whitespace made visible (a chip or a header of " " would look empty)."""
    if text and not text.strip(" "):
        return text.replace(" ", "␣")
    return text.replace("\n", "↵").replace("\t", "⇥") or "∅"


def show_cell_tooltip(widget: QWidget, event: QHelpEvent, text_at: Callable[[int, int], str]) -> bool:
    """A heat map's tooltip: the text for the cell under the pointer, or none between cells (handled either way)."""
    text = text_at(event.pos().x(), event.pos().y())
    if text:
        QToolTip.showText(event.globalPos(), text, widget)
    else:
        QToolTip.hideText()
    return True
