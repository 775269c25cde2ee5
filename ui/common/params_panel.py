"""Sampling controls; ``values()`` is the snapshot a request is built from."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)


def _double(lo: float, hi: float, step: float, value: float, decimals: int = 2) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    box.setValue(value)
    return box


def _int(lo: int, hi: int, value: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setValue(value)
    return box


def parse_stops(text: str) -> tuple[str, ...]:
    r"""Stop sequences are typed comma-separated with \n and \t escapes ("\n\n, END")."""
    out = []
    for part in text.split(","):
        part = part.strip(" ")
        if part:
            out.append(part.replace("\\n", "\n").replace("\\t", "\t"))
    return tuple(out)


def format_stops(stops: list[str] | tuple[str, ...]) -> str:
    return ", ".join(s.replace("\n", "\\n").replace("\t", "\\t") for s in stops)


class ParamsPanel(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.max_tokens = _int(1, 8192, 64)
        self.temperature = _double(0.0, 2.0, 0.05, 0.7)
        self.temperature.setToolTip("0 = greedy (always the most likely token)")
        self.top_p = _double(0.01, 1.0, 0.05, 1.0)
        self.top_k = _int(0, 1000, 0)
        self.top_k.setSpecialValueText("off")
        self.repetition_penalty = _double(0.5, 2.0, 0.05, 1.0)
        self.repetition_penalty.setToolTip("Above 1: tokens already in the prompt or the output get less likely "
                                           "(their logits are divided by it)")
        self.presence_penalty = _double(-2.0, 2.0, 0.1, 0.0)
        self.presence_penalty.setToolTip("Subtracted once from the logit of every token the output already holds "
                                         "(OpenAI's presence penalty): above 0 favours new tokens and topics; "
                                         "below 0, repeats")
        self.frequency_penalty = _double(-2.0, 2.0, 0.1, 0.0)
        self.frequency_penalty.setToolTip("Subtracted from a token's logit once per time the output already holds it "
                                          "(OpenAI's frequency penalty): above 0 breaks loops; below 0, repeats")
        self.stop = QLineEdit()
        self.stop.setPlaceholderText(r"e.g. \n\n, END")
        self.stop.setToolTip(r"Comma-separated; \n is a newline. The stop text itself is not shown.")
        self.seed = _int(-1, 2**31 - 1, -1)
        self.seed.setSpecialValueText("random")
        self.n = _int(1, 8, 1)

        form = QFormLayout(self)
        form.addRow("Max new tokens", self.max_tokens)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-p", self.top_p)
        form.addRow("Top-k", self.top_k)
        form.addRow("Repetition penalty", self.repetition_penalty)
        form.addRow("Presence penalty", self.presence_penalty)
        form.addRow("Frequency penalty", self.frequency_penalty)
        form.addRow("Stop sequences", self.stop)
        form.addRow("Seed", self.seed)
        form.addRow("Completions (n)", self.n)
        for box in (self.max_tokens, self.temperature, self.top_p, self.top_k, self.repetition_penalty,
                    self.presence_penalty, self.frequency_penalty, self.seed, self.n):
            box.valueChanged.connect(self.changed)
        self.stop.textChanged.connect(self.changed)

    def values(self) -> dict[str, Any]:
        seed = self.seed.value()
        return {
            "max_new_tokens": self.max_tokens.value(),
            "temperature": round(self.temperature.value(), 4),
            "top_p": round(self.top_p.value(), 4),
            "top_k": self.top_k.value(),
            "repetition_penalty": round(self.repetition_penalty.value(), 4),
            "presence_penalty": round(self.presence_penalty.value(), 4),
            "frequency_penalty": round(self.frequency_penalty.value(), 4),
            "stop": parse_stops(self.stop.text()),
            "seed": None if seed < 0 else seed,
            "n": self.n.value(),
        }

    def apply(self, params: dict[str, Any]) -> None:
        """Set the controls from a preset, a draft or a saved run; unknown keys, and values of the wrong type
        (an imported file's ``"top_p": "z"``), are ignored."""
        for key, box in (("max_new_tokens", self.max_tokens), ("top_k", self.top_k), ("n", self.n)):
            if _is_number(params.get(key)):
                box.setValue(int(min(max(params[key], box.minimum()), box.maximum())))
        for key in ("temperature", "top_p", "repetition_penalty", "presence_penalty", "frequency_penalty"):
            if _is_number(params.get(key)):
                getattr(self, key).setValue(float(params[key]))  # QDoubleSpinBox clamps to its range
        stop = params.get("stop")
        if isinstance(stop, list | tuple) and all(isinstance(s, str) for s in stop):
            self.stop.setText(format_stops(stop))
        if "seed" in params and (params["seed"] is None or _is_number(params["seed"])):
            seed = params["seed"]
            self.seed.setValue(-1 if seed is None or not -1 <= seed < 2**31 else int(seed))


def _is_number(value: Any) -> bool:
    """A finite int or float (not a bool, not a string)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
