"""Sampling controls; ``values()`` is the snapshot a request is built from.

Each tab has its own panel (``PanelSpec``): only the parameters that tab uses, with that tab's defaults (Layout
starts greedy), a line saying where the values come from (the tab's defaults, a preset, a saved run, the session,
your edits), and a bold label wherever a value differs from the default. The API stays ``values()``, ``apply()``,
``changed``: a new control is one more entry in ``FIELDS``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ui.common.widgets import hint_label


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


@dataclass(frozen=True)
class Field:
    """One control: its label, what it means (the tooltip), its default and how to build it."""

    label: str
    help: str
    default: Any
    make: Callable[[], QWidget]


def _double(lo: float, hi: float, step: float, decimals: int = 2) -> Callable[[], QWidget]:
    def make() -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(lo, hi)
        box.setSingleStep(step)
        box.setDecimals(decimals)
        return box

    return make


def _int(lo: int, hi: int, special: str = "") -> Callable[[], QWidget]:
    def make() -> QSpinBox:
        box = QSpinBox()
        box.setRange(lo, hi)
        if special:
            box.setSpecialValueText(special)
        return box

    return make


def _stops() -> QLineEdit:
    box = QLineEdit()
    box.setPlaceholderText(r"e.g. \n\n, END")
    return box


FIELDS: dict[str, Field] = {
    "max_new_tokens": Field("Max new tokens", "The most tokens to generate; a run may stop earlier at an end "
                            "token or a stop sequence.", 64, _int(1, 8192)),
    "temperature": Field("Temperature", "How random the choice of the next token is: 0 always takes the most likely "
                         "token (greedy, the same text every time); 0.7 is varied; above 1 gets erratic.", 0.7,
                         _double(0.0, 2.0, 0.05)),
    "top_p": Field("Top-p", "Nucleus sampling: choose only among the most likely tokens whose probabilities add up "
                   "to p (1 = all tokens). Lower is safer, less varied.", 1.0, _double(0.01, 1.0, 0.05)),
    "top_k": Field("Top-k", "Choose only among the k most likely tokens (off = no limit).", 0, _int(0, 1000, "off")),
    "repetition_penalty": Field("Repetition penalty", "Above 1 makes tokens already in the text less likely "
                                "(against loops); 1 = off.", 1.0, _double(0.5, 2.0, 0.05)),
    "presence_penalty": Field("Presence penalty", "Subtracted once from the logit of every token the output already "
                              "holds (OpenAI's presence penalty): above 0 favours new tokens and topics; below 0, "
                              "repeats; 0 = off.", 0.0, _double(-2.0, 2.0, 0.1)),
    "frequency_penalty": Field("Frequency penalty", "Subtracted from a token's logit once per time the output "
                               "already holds it (OpenAI's frequency penalty): above 0 breaks loops; below 0, "
                               "repeats; 0 = off.", 0.0, _double(-2.0, 2.0, 0.1)),
    "stop": Field("Stop sequences", "Comma-separated; \\n is a newline. Generation ends before the first one "
                  "appears; the stop text itself is not shown.", (), _stops),
    "seed": Field("Seed", "The random seed: the same seed and the same settings give the same text (random = a "
                  "new seed each run; the seed used is shown after the run).", None,
                  _int(-1, 2**31 - 1, "random")),
    "n": Field("Completions (n)", "How many completions of the same prompt to generate, one after another (seeds "
               "seed, seed+1, …).", 1, _int(1, 8)),
}


@dataclass(frozen=True)
class PanelSpec:
    """Which parameters a tab uses, its defaults (over ``FIELDS``'), limits and the line that explains them."""

    title: str  # "Prompt": where "defaults" come from
    fields: tuple[str, ...] = tuple(FIELDS)
    defaults: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, tuple[float, float]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    intro: str = ""

    def default(self, key: str) -> Any:
        return self.defaults.get(key, FIELDS[key].default)


ALL_PARAMETERS = PanelSpec("Default")


def run_origin(run: Any) -> str:
    """Where a saved run's values come from, for the panel's origin line."""
    from datetime import UTC

    when = run.created_at.replace(tzinfo=UTC).astimezone().strftime("%Y-%m-%d %H:%M") if run.created_at else ""
    return f"from the run of {when}" if when else "from a saved run"


class ParamsPanel(QWidget):
    changed = Signal()

    def __init__(self, spec: PanelSpec = ALL_PARAMETERS, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self.controls: dict[str, QWidget] = {}
        self.labels: dict[str, QLabel] = {}
        self._applying = False
        self.intro = hint_label(spec.intro)
        self.intro.setVisible(bool(spec.intro))
        self.origin = hint_label()
        self.reset_button = QPushButton("Defaults")
        self.reset_button.setToolTip(f"Set every value back to the {spec.title} tab's defaults")
        self.reset_button.clicked.connect(lambda _checked=False: self.reset())
        head = QHBoxLayout()
        head.addWidget(self.origin, 1)
        head.addWidget(self.reset_button)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form = form
        self._wide: int | None = None  # sizeHint width with labels beside their fields (wide_width measures it)
        for key in spec.fields:
            f = FIELDS[key]
            control = f.make()
            if key in spec.limits and isinstance(control, QAbstractSpinBox):
                control.setRange(*spec.limits[key])
            label = QLabel(spec.labels.get(key, f.label))
            tip = f"{f.help}\nDefault in the {spec.title} tab: {self._shown(key, spec.default(key))}."
            control.setToolTip(tip)
            label.setToolTip(tip)
            label.setBuddy(control)
            self.controls[key], self.labels[key] = control, label
            setattr(self, "max_tokens" if key == "max_new_tokens" else key, control)  # as callers know them
            form.addRow(label, control)
            signal = control.textChanged if isinstance(control, QLineEdit) else control.valueChanged
            signal.connect(self._on_edited)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addLayout(head)
        layout.addLayout(form)
        layout.addStretch(1)
        self._side_margin = layout.contentsMargins().left()
        self.reset(origin=f"{spec.title} defaults")

    def wide_width(self) -> int:
        """The width this panel wants with each label beside its field."""
        if self._wide is None:
            compact = self.compact
            self.set_compact(False)
            self._wide = self.sizeHint().width()
            self.set_compact(compact)
        return self._wide

    @property
    def compact(self) -> bool:
        return self.form.rowWrapPolicy() == QFormLayout.RowWrapPolicy.WrapAllRows

    def set_compact(self, on: bool) -> None:
        """Labels above their fields, and narrower side margins (a narrow sidebar: 1024 px windows), or beside."""
        if on == self.compact:
            return
        self.form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows if on
                                   else QFormLayout.RowWrapPolicy.DontWrapRows)
        m = self.layout().contentsMargins()
        side = 3 if on else self._side_margin
        self.layout().setContentsMargins(side, m.top(), side, m.bottom())
        self.updateGeometry()

    def values(self) -> dict[str, Any]:
        """The shown parameters as GenerationRequest fields."""
        out: dict[str, Any] = {}
        for key, control in self.controls.items():
            out[key] = self._read(key, control)
        return out

    def apply(self, params: dict[str, Any], origin: str | None = None) -> None:
        """Set the controls from a preset, a saved run or a draft (unknown keys are ignored); ``origin`` says where
        the values came from ("preset “Capitals”")."""
        self._applying = True
        try:
            for key, value in params.items():
                if key in self.controls and _acceptable(key, value):
                    self._write(key, self.controls[key], value)
        finally:
            self._applying = False
        if origin is not None:
            self.set_origin(origin)
        self._mark_changed_values()
        self.changed.emit()

    def reset(self, origin: str | None = None) -> None:
        """Every value back to this tab's defaults."""
        self.apply({key: self.spec.default(key) for key in self.spec.fields},
                   origin if origin is not None else f"{self.spec.title} defaults")

    def set_origin(self, origin: str) -> None:
        self.origin.setText(f"Values: {origin}")

    def defaults_differ(self) -> list[str]:
        """The parameters whose value is not this tab's default."""
        return [k for k in self.controls if self._read(k, self.controls[k]) != _normal(self.spec.default(k))]

    @Slot()
    def _on_edited(self) -> None:
        if self._applying:
            return
        self.set_origin("edited (bold: not the default)")
        self._mark_changed_values()
        self.changed.emit()

    def _mark_changed_values(self) -> None:
        differ = set(self.defaults_differ())
        for key, label in self.labels.items():
            font = label.font()
            font.setBold(key in differ)
            label.setFont(font)

    @staticmethod
    def _read(key: str, control: QWidget) -> Any:
        if key == "stop":
            return parse_stops(control.text())
        if key == "seed":
            return None if control.value() < 0 else control.value()
        if isinstance(control, QDoubleSpinBox):
            return round(control.value(), 4)
        return control.value()

    @staticmethod
    def _write(key: str, control: QWidget, value: Any) -> None:
        if key == "stop":
            control.setText(format_stops(value or ()))
        elif key == "seed":
            control.setValue(-1 if value is None or not -1 <= value < 2**31 else int(value))
        elif isinstance(control, QDoubleSpinBox):
            control.setValue(float(min(max(value, control.minimum()), control.maximum())))
        else:  # clamped here: a huge int from a file would overflow Qt's 32-bit setter
            control.setValue(int(min(max(value, control.minimum()), control.maximum())))

    def _shown(self, key: str, value: Any) -> str:
        if key == "stop":
            return format_stops(value) or "none"
        if key == "seed" and value is None:
            return "random"
        if key == "top_k" and value == 0:
            return "off"
        return str(value)


def _acceptable(key: str, value: Any) -> bool:
    """A value of the right type for ``key`` (an imported file's ``"top_p": "z"`` is ignored, not raised on)."""
    if key == "stop":
        return isinstance(value, list | tuple) and all(isinstance(s, str) for s in value)
    if key == "seed" and value is None:
        return True
    return _is_number(value)


def _is_number(value: Any) -> bool:
    """A finite int or float (not a bool, not a string)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _normal(value: Any) -> Any:
    """A default as ``values()`` reports it (stop sequences as a tuple, floats rounded)."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, float):
        return round(value, 4)
    return value
