"""The probe panel: a template with one slot, slot values and continuations; the result as a table (probability
and share of each continuation per value) and a chart, exported as CSV and PNG."""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from playground.domain.inspect import ProbeRow
from playground.tasks.probe import ProbeRequest, parse_continuations, parse_values, probe_csv, shares
from ui.common.widgets import hint_label
from ui.inspect.probe_chart import ProbeChart

EXAMPLE = ("The {occupation} was a", "nurse, doctor, engineer, receptionist, carpenter, teacher", " man, woman")


class ProbePanel(QWidget):
    changed = Signal()
    message = Signal(str)  # what an export did

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[ProbeRow] = []
        self.template = QLineEdit(EXAMPLE[0])
        self.template.setToolTip("The text before the continuation, with one slot in braces")
        self.values = QLineEdit(EXAMPLE[1])
        self.values.setToolTip("What goes in the slot, comma-separated")
        self.continuations = QLineEdit(EXAMPLE[2])
        self.continuations.setToolTip("What might come next, comma-separated and kept exactly as typed: the "
                                      "leading space of ' man' is part of the token")
        for edit in (self.template, self.values, self.continuations):
            edit.textEdited.connect(self.changed)
        self.run_button = QPushButton("Run probe")
        self.export_csv = QPushButton("Export CSV…")
        self.export_png = QPushButton("Save chart as PNG…")
        self.export_csv.clicked.connect(lambda _=False: self._on_export_csv())
        self.export_png.clicked.connect(lambda _=False: self._on_export_png())
        self.table = QTableWidget()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.chart = ProbeChart()

        form = QFormLayout()
        form.addRow("Template", self.template)
        form.addRow("Slot values", self.values)
        form.addRow("Continuations", self.continuations)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addStretch(1)
        buttons.addWidget(self.export_csv)
        buttons.addWidget(self.export_png)
        results = QSplitter()
        results.addWidget(self.table)
        results.addWidget(self.chart)
        results.setSizes([320, 480])
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(hint_label(
            "Each continuation's probability after the template with each value (the sum of its tokens' "
            "log-probabilities), and its share among the continuations: the GPT-3 paper measured gender bias "
            "across occupations this way."))
        layout.addLayout(buttons)
        layout.addWidget(results, 1)
        self._update_exports()

    def request(self) -> ProbeRequest:
        """A snapshot of the inputs (validate before running)."""
        return ProbeRequest(self.template.text(), parse_values(self.values.text()),
                            parse_continuations(self.continuations.text()))

    def set_inputs(self, template: str, values: list[str], continuations: list[str]) -> None:
        self.template.setText(template)
        self.values.setText(", ".join(values))
        self.continuations.setText(",".join(continuations))

    def show_rows(self, rows: list[ProbeRow], title: str = "") -> None:
        """The table (values × continuations: probability and share) and the chart."""
        self.rows = list(rows)
        values = list(dict.fromkeys(r.value for r in rows))
        conts = list(dict.fromkeys(r.continuation for r in rows))
        share = {(r.value, r.continuation): s for r, s in zip(rows, shares(rows), strict=True)}
        self.table.clear()
        self.table.setRowCount(len(values))
        self.table.setColumnCount(len(conts))
        self.table.setHorizontalHeaderLabels([repr(c) for c in conts])
        self.table.setVerticalHeaderLabels(values)
        for r in rows:
            item = QTableWidgetItem(f"{math.exp(r.logprob):.2%}  ({share[r.value, r.continuation]:.0%})")
            item.setToolTip(f"log P({r.continuation!r} | template with {r.value!r}) = {r.logprob:.3f}; "
                            f"in brackets: its share among the continuations")
            self.table.setItem(values.index(r.value), conts.index(r.continuation), item)
        self.chart.set_rows(rows, title)
        self._update_exports()

    def _update_exports(self) -> None:
        self.export_csv.setEnabled(bool(self.rows))
        self.export_png.setEnabled(bool(self.rows))

    # -- export ------------------------------------------------------------------------------------------------
    def save_csv(self, path: str | Path) -> None:
        Path(path).write_text(probe_csv(self.rows), encoding="utf-8")

    @Slot()
    def _on_export_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the probe as CSV", "probe.csv", "CSV (*.csv)")
        if path:
            try:
                self.save_csv(path)
            except OSError as exc:
                self.message.emit(f"Could not write {path}: {exc.strerror or exc}")
                return
            self.message.emit(f"Saved {path}")

    @Slot()
    def _on_export_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the probe chart", "probe.png", "PNG (*.png)")
        if path:
            self.message.emit(f"Saved {path}" if self.chart.save_png(path) else f"Could not write {path}")
