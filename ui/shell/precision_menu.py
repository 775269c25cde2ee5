"""Model ▸ Precision: what local models decode at on the CPU, remembered in the data dir's preferences."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu

from playground import preferences
from playground.errors import KnownError

# (value, menu label, tooltip) for Model ▸ Precision; measured by bench/decode_speed.py on the embedded model.
PRECISION_CHOICES = (
    ("auto", "Auto (int4 weights for models of 50M+ parameters)",
     "int4 weights, fp32 activations: fp32's answers and perplexity on the embedded model (bench/decode_speed.py)"),
    ("int4", "int4 weights", "4-bit weights in groups of 32, fp32 activations: closest to fp32 of the int4 options"),
    ("int4-a8", "int4 weights, int8 activations",
     "Fastest: the int8 activations cost ~0.4-1.3% perplexity on the embedded model"),
    ("int8", "int8 weights", "8-bit weights"),
    ("bf16", "bf16 weights", "Half the bytes of fp32"),
    ("fp32", "fp32 (full precision)", "The model's own weights"),
)


class PrecisionMenu(QObject):
    """A "Precision (CPU)" submenu of radio actions; ``chosen`` fires with the value the user picks."""

    chosen = Signal(str)

    def __init__(self, parent_menu: QMenu, parent: QObject | None = None) -> None:
        from playground.engine.text import default_precision, set_default_precision

        super().__init__(parent)
        saved = preferences.get("precision")
        try:
            if saved:
                set_default_precision(saved)  # the last session's choice applies before anything loads
        except KnownError:
            saved = None
        current = saved or default_precision()
        menu = parent_menu.addMenu("&Precision (CPU)")
        menu.setToolTipsVisible(True)
        group = QActionGroup(self)
        self.actions_by_value: dict[str, QAction] = {}
        for value, label, tip in PRECISION_CHOICES:
            action = menu.addAction(label)
            action.setCheckable(True)
            action.setChecked(value == current)
            action.setToolTip(tip)
            action.triggered.connect(lambda _=False, v=value: self.chosen.emit(v))
            group.addAction(action)
            self.actions_by_value[value] = action

    def choose(self, value: str) -> bool:
        """Make ``value`` the precision (and remember it); False when it already was."""
        from playground.engine.text import default_precision, set_default_precision

        if value == default_precision():
            return False
        set_default_precision(value)
        preferences.put("precision", value)
        self.actions_by_value[value].setChecked(True)
        return True
