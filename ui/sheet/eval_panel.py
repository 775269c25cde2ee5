"""The Sheet tab's evaluation panel: which column and ks to try, the accuracy chart (a line per model), its numbers.

The panel plans an evaluation and scores its answers; the tab runs the prompts on its worker in between.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from playground.tasks.sheet import Sheet
from playground.tasks.sheet_eval import (
    DEFAULT_QUERIES,
    DEFAULT_TOLERANCE,
    EvalPlan,
    EvalPoint,
    parse_shots,
    plan_eval,
    points_to_csv,
    score,
)
from playground.tasks.sheet_state import SheetState
from ui.common.flow_layout import flow_row
from ui.sheet.chart import METRICS, AccuracyChart
from ui.sheet.grid import action_button


class SheetEvalPanel(QWidget):
    problem = Signal(str)  # something the user should fix, shown above the sheet
    changed = Signal()  # the user changed a setting or cleared the chart: part of the draft

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.points: list[EvalPoint] = []

        self.eval_column = QComboBox()
        self.eval_column.setToolTip("The column whose known values are hidden one at a time and asked for")
        self.eval_column.activated.connect(self.changed)
        self.shots = QLineEdit("0,1,2,4,8")
        self.shots.setMaximumWidth(110)
        self.shots.setToolTip("Numbers of example rows k to try, comma-separated")
        self.shots.textEdited.connect(self.changed)
        self.tolerance = QDoubleSpinBox()
        self.tolerance.setRange(0.0, 1.0)
        self.tolerance.setSingleStep(0.01)
        self.tolerance.setValue(DEFAULT_TOLERANCE)
        self.tolerance.setPrefix("± ")
        self.tolerance.setToolTip("Relative tolerance of the numeric score (0.05 = within 5%)")
        self.tolerance.valueChanged.connect(self.changed)
        self.metric_box = QComboBox()
        for key, text in METRICS.items():
            self.metric_box.addItem(text, key)
        self.metric_box.currentIndexChanged.connect(self._on_metric_changed)
        self.metric_box.activated.connect(self.changed)
        self.metric_box.activated.connect(lambda _i: setattr(self, "metric_chosen", True))
        self.metric_chosen = False  # picked by the user: an evaluation no longer switches it
        self.eval_button = action_button("Evaluate", f"Hide the column's values one row at a time (up to "
                                         f"{DEFAULT_QUERIES} rows per k) and ask the current model with k example "
                                         "rows")
        self.save_png_button = action_button("Save PNG…", "Save the chart as an image", self._on_save_png_clicked)
        self.save_csv_button = action_button("Save numbers…", "Save the accuracies as CSV",
                                             self._on_save_numbers_clicked)
        self.clear_chart_button = action_button("Clear chart", "Remove every model's line", self._on_clear_clicked)
        self.chart = AccuracyChart()
        self.numbers = QTableWidget(0, 5)
        self.numbers.setHorizontalHeaderLabels(["model", "k", "exact", "normalised", "numeric"])
        self.numbers.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.numbers.verticalHeader().hide()
        self.numbers.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

        eval_row = flow_row(QLabel("<b>Evaluate</b> column"), self.eval_column, QLabel("k ="), self.shots,
                            self.tolerance, self.metric_box, self.eval_button)  # wraps when narrow
        save_row = QHBoxLayout()
        self.tools_row = save_row  # its left end takes the fine-tune controls (ui.sheet.transfer)
        save_row.addStretch(1)
        save_row.addWidget(self.save_png_button)
        save_row.addWidget(self.save_csv_button)
        save_row.addWidget(self.clear_chart_button)
        chart_row = QSplitter(Qt.Orientation.Horizontal)
        chart_row.setObjectName("sheet_chart")  # its sizes are remembered
        chart_row.addWidget(self.chart)
        chart_row.addWidget(self.numbers)
        chart_row.setStretchFactor(0, 1)
        chart_row.setSizes([700, 420])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(eval_row)
        layout.addWidget(chart_row, 1)
        layout.addLayout(save_row)

    # -- running ---------------------------------------------------------------------------------------------
    def plan(self, sheet: Sheet) -> EvalPlan:
        """The prompts that measure the chosen column at the chosen ks; raises KnownError when it cannot run."""
        return plan_eval(sheet, self.eval_column.currentIndex(), parse_shots(self.shots.text()), DEFAULT_QUERIES)

    def show_scores(self, plan: EvalPlan, model: str, values: list[str | None]) -> list[EvalPoint]:
        """Score ``values`` (aligned with the plan's cases) and draw them as ``model``'s line; return the points."""
        points = score(plan, model, values, self.tolerance.value())
        self.points = [p for p in self.points if p.model != model] + points
        if plan.numeric and not self.metric_chosen:  # numbers: within tolerance, unless another was picked
            self.metric_box.setCurrentIndex(self.metric_box.findData("numeric"))
        elif not plan.numeric and self.metric_box.currentData() == "numeric":  # no numbers to score
            self.metric_box.setCurrentIndex(self.metric_box.findData("normalised"))
        self.chart.set_points(model, points, title=f"Accuracy on {plan.column_name!r}")
        self._show_numbers()
        return points

    def show_lines(self, points: list[EvalPoint], title: str, metric: str) -> None:
        """Show exactly ``points`` (one line per ``model`` name) under ``title``, scored by ``metric``."""
        self.points = list(points)
        self.metric_box.setCurrentIndex(max(0, self.metric_box.findData(metric)))
        self.chart.clear()
        for line in dict.fromkeys(p.model for p in self.points):
            self.chart.set_points(line, [p for p in self.points if p.model == line])
        self.chart.title = title
        self.chart.update()
        self._show_numbers()

    @Slot()
    def clear_chart(self) -> None:
        self.points = []
        self.chart.clear()
        self._show_numbers()

    def set_columns(self, columns: list[str]) -> None:
        """Offer ``columns``, keeping the chosen one when it still exists (else the second column)."""
        keep = self.eval_column.currentText()
        self.eval_column.clear()
        self.eval_column.addItems(columns)
        index = self.eval_column.findText(keep)
        self.eval_column.setCurrentIndex(index if index >= 0 else min(1, len(columns) - 1))

    def save_numbers(self, path: str | Path) -> bool:
        """Write the chart's numbers (model, k, n, exact, normalised, numeric) as CSV."""
        try:
            Path(path).write_text(points_to_csv(self.points), encoding="utf-8")
        except OSError as exc:
            self.problem.emit(f"Cannot write {path}: {exc.strerror or exc}")
            return False
        return True

    # -- sessions --------------------------------------------------------------------------------------------
    def save_into(self, state: SheetState) -> None:
        """Write the settings and the chart into ``state`` (a draft)."""
        state.eval_column = self.eval_column.currentText()
        state.shots = self.shots.text()
        state.tolerance = self.tolerance.value()
        state.metric = self.metric_box.currentData()
        state.chart_title = self.chart.title
        state.points = list(self.points)

    def load_from(self, state: SheetState) -> None:
        """Show the settings and the chart of ``state`` (the columns must already be offered)."""
        index = self.eval_column.findText(state.eval_column)
        if index >= 0:
            self.eval_column.setCurrentIndex(index)
        self.shots.setText(state.shots)
        self.tolerance.setValue(state.tolerance)
        self.metric_box.setCurrentIndex(max(0, self.metric_box.findData(state.metric)))
        self.points = list(state.points)
        self.chart.clear()
        for model in dict.fromkeys(p.model for p in self.points):
            self.chart.set_points(model, [p for p in self.points if p.model == model])
        self.chart.title = state.chart_title
        self.chart.update()
        self._show_numbers()

    # -- widgets ---------------------------------------------------------------------------------------------
    @Slot(int)
    def _on_metric_changed(self, _index: int) -> None:
        self.chart.set_metric(self.metric_box.currentData())

    @Slot()
    def _on_clear_clicked(self) -> None:
        self.clear_chart()
        self.changed.emit()

    @Slot()
    def _on_save_png_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the chart", "accuracy.png", filter="PNG (*.png)")
        if path and not self.chart.save_png(path):
            self.problem.emit(f"Cannot write {path}")

    @Slot()
    def _on_save_numbers_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the numbers", "accuracy.csv", filter="CSV (*.csv)")
        if path:
            self.save_numbers(path)

    def _show_numbers(self) -> None:
        self.numbers.setRowCount(len(self.points))
        for i, p in enumerate(self.points):
            cells = [p.model, str(p.k), f"{p.exact:.0%}", f"{p.normalised:.0%}",
                     "–" if p.numeric is None else f"{p.numeric:.0%}"]
            for j, text in enumerate(cells):
                self.numbers.setItem(i, j, QTableWidgetItem(text))
