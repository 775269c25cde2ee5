"""The Sheet tab: a grid whose empty cells the model fills from the complete rows, with a confidence per cell,
and an evaluation that plots few-shot accuracy against the number of example rows k."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QPoint, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from playground.engine.fill import CONFIDENCE_HELP, CellAnswer, FillResult
from playground.errors import KnownError
from playground.tasks.presets import Preset, load_presets
from playground.tasks.sheet import (
    Sheet,
    fill_prompts,
    is_numeric_column,
    parse_table,
    read_csv,
    to_csv,
)
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
from ui.params_panel import ParamsPanel
from ui.sheet_chart import METRICS, AccuracyChart
from ui.sheet_model import SheetModel
from ui.sheet_worker import Loader, SheetWorker

MAX_CELL_TOKENS = 32  # a cell is a short value; the panel's max tokens is capped here
COUNTS_MS = 200  # recount typed / model / unsure cells at most 5 times a second during a fill
LEGEND = ("<b>Model cells</b> are italic and coloured red → green by confidence; hatched <b>? cells</b> are "
          "unsure (under the threshold) and are exported empty. Hover a cell for its top alternatives. "
          "Confidence = product of the answer tokens' probabilities.")


def _button(text: str, tip: str, slot: Callable[[], None]) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tip)
    button.clicked.connect(slot)
    return button


class SheetTab(QWidget):
    fill_finished = Signal(object)  # FillResult, after its cells are on screen
    eval_finished = Signal(object)  # list[EvalPoint], after the chart is drawn
    message = Signal(str)  # one line for the status bar

    def __init__(self, params: ParamsPanel, model_id: Callable[[], str], loader: Loader | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.params = params
        self.model_id = model_id
        self.worker = SheetWorker(loader, self)
        self.model = SheetModel(self)
        self._running: str | None = None  # "fill" | "eval" while a job runs
        self._fill_total = 0
        self._done = 0
        self._eval_plan: EvalPlan | None = None
        self._eval_model = ""
        self.points: list[EvalPoint] = []
        self.setAcceptDrops(True)

        # -- top: presets and notices
        self.presets = QComboBox()
        self.presets.addItem("Presets…")
        self._presets: list[Preset] = load_presets("sheet")
        for preset in self._presets:
            self.presets.addItem(preset.name)
        self.presets.activated.connect(self._on_preset_activated)
        self.preset_note = QLabel()
        self.preset_note.setWordWrap(True)
        self.preset_note.setStyleSheet("color: palette(mid);")
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("background: #fff4d6; color: #5c4400; padding: 6px; border-radius: 4px;")
        self.notice.hide()
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.setStyleSheet("background: #fde2e1; color: #8a1c13; padding: 6px; border-radius: 4px;")
        self.error.hide()

        # -- the grid
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setWordWrap(False)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.view.horizontalHeader().setDefaultSectionSize(170)
        self.view.horizontalHeader().setStretchLastSection(True)
        self.view.horizontalHeader().sectionDoubleClicked.connect(self._on_header_double_clicked)
        self.view.horizontalHeader().setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.horizontalHeader().customContextMenuRequested.connect(self._on_header_menu_requested)
        self.view.verticalHeader().setDefaultSectionSize(24)
        self._edit_triggers = self.view.editTriggers()

        self.import_button = _button("Import CSV…", "Open a CSV or TSV file (or drop one on the sheet)",
                                     self._on_import_clicked)
        self.export_button = _button("Export CSV…", "Save the sheet; unsure cells are written empty",
                                     self._on_export_clicked)
        self.add_row_button = _button("+ Row", "Add a row below the current one", self.add_row)
        self.remove_row_button = _button("− Row", "Remove the selected rows", self.remove_rows)
        self.add_column_button = _button("+ Column", "Add a column after the current one", self.add_column)
        self.remove_column_button = _button("− Column", "Remove the selected columns", self.remove_columns)
        self.fill_button = _button("Fill  (Ctrl+Enter)", "Complete every empty cell from the complete rows",
                                   self.fill)
        self.fill_button.setDefault(True)
        self.stop_button = _button("Stop  (Esc)", "Stop after the current step; filled cells stay", self.stop)
        self.stop_button.setEnabled(False)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        self.threshold.setValue(self.model.threshold)
        self.threshold.setPrefix("unsure below ")
        self.threshold.setToolTip("Model cells with a confidence under this are shown as unsure (hatched, '?') "
                                  "and exported empty. " + CONFIDENCE_HELP)
        self.threshold.valueChanged.connect(self._on_threshold_changed)
        self.accept_button = _button("Accept", "Keep the selected model cells as your own values (they then "
                                     "serve as examples); with nothing selected, every cell above the threshold",
                                     self.accept_cells)
        self.clear_button = _button("Clear", "Empty the selected cells (Delete)", self.clear_cells)

        # -- evaluation
        self.eval_column = QComboBox()
        self.eval_column.setToolTip("The column whose known values are hidden one at a time and asked for")
        self.shots = QLineEdit("0,1,2,4,8")
        self.shots.setMaximumWidth(110)
        self.shots.setToolTip("Numbers of example rows k to try, comma-separated")
        self.tolerance = QDoubleSpinBox()
        self.tolerance.setRange(0.0, 1.0)
        self.tolerance.setSingleStep(0.01)
        self.tolerance.setValue(DEFAULT_TOLERANCE)
        self.tolerance.setPrefix("± ")
        self.tolerance.setToolTip("Relative tolerance of the numeric score (0.05 = within 5%)")
        self.metric_box = QComboBox()
        for key, text in METRICS.items():
            self.metric_box.addItem(text, key)
        self.metric_box.currentIndexChanged.connect(self._on_metric_changed)
        self.eval_button = _button("Evaluate", f"Hide the column's values one row at a time (up to "
                                   f"{DEFAULT_QUERIES} rows per k) and ask the current model with k example rows",
                                   self.evaluate)
        self.save_png_button = _button("Save PNG…", "Save the chart as an image", self._on_save_png_clicked)
        self.save_csv_button = _button("Save numbers…", "Save the accuracies as CSV", self._on_save_numbers_clicked)
        self.clear_chart_button = _button("Clear chart", "Remove every model's line", self.clear_chart)
        self.chart = AccuracyChart()
        self.numbers = QTableWidget(0, 5)
        self.numbers.setHorizontalHeaderLabels(["model", "k", "exact", "normalised", "numeric"])
        self.numbers.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.numbers.verticalHeader().hide()
        self.numbers.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

        self.legend = QLabel(LEGEND)
        self.legend.setWordWrap(True)
        self.legend.setStyleSheet("color: palette(mid);")
        self.stats = QLabel()
        self.stats.setToolTip(CONFIDENCE_HELP)
        self.counts = QLabel()
        self._counts_timer = QTimer(self, interval=COUNTS_MS, singleShot=True)
        self._counts_timer.timeout.connect(self._update_counts)

        # -- layout
        top = QHBoxLayout()
        top.addWidget(self.presets)
        top.addWidget(self.preset_note, 1)
        edit_row = QHBoxLayout()
        for w in (self.import_button, self.export_button, self.add_row_button, self.remove_row_button,
                  self.add_column_button, self.remove_column_button):
            edit_row.addWidget(w)
        edit_row.addStretch(1)
        edit_row.addWidget(self.accept_button)
        edit_row.addWidget(self.clear_button)
        fill_row = QHBoxLayout()
        fill_row.addWidget(self.fill_button)
        fill_row.addWidget(self.stop_button)
        fill_row.addWidget(self.threshold)
        fill_row.addWidget(self.stats, 1)
        fill_row.addWidget(self.counts)
        sheet_box = QWidget()
        sheet_lay = QVBoxLayout(sheet_box)
        sheet_lay.setContentsMargins(0, 0, 0, 0)
        sheet_lay.addLayout(edit_row)
        sheet_lay.addWidget(self.view, 1)
        sheet_lay.addWidget(self.legend)
        sheet_lay.addLayout(fill_row)

        eval_row = QHBoxLayout()
        eval_row.addWidget(QLabel("<b>Evaluate</b> column"))
        eval_row.addWidget(self.eval_column)
        eval_row.addWidget(QLabel("k ="))
        eval_row.addWidget(self.shots)
        eval_row.addWidget(self.tolerance)
        eval_row.addWidget(self.metric_box)
        eval_row.addWidget(self.eval_button)
        eval_row.addStretch(1)
        eval_row.addWidget(self.save_png_button)
        eval_row.addWidget(self.save_csv_button)
        eval_row.addWidget(self.clear_chart_button)
        chart_row = QSplitter(Qt.Orientation.Horizontal)
        chart_row.addWidget(self.chart)
        chart_row.addWidget(self.numbers)
        chart_row.setStretchFactor(0, 1)
        chart_row.setSizes([700, 420])
        eval_box = QWidget()
        eval_lay = QVBoxLayout(eval_box)
        eval_lay.setContentsMargins(0, 0, 0, 0)
        eval_lay.addLayout(eval_row)
        eval_lay.addWidget(chart_row, 1)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(sheet_box)
        splitter.addWidget(eval_box)
        splitter.setSizes([430, 300])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.notice)
        layout.addWidget(self.error)
        layout.addWidget(splitter, 1)

        shortcuts = [("Ctrl+Return", self.fill), ("Ctrl+Enter", self.fill), (Qt.Key.Key_Escape, self.stop),
                     (QKeySequence.StandardKey.Paste, self.paste_clipboard),
                     (QKeySequence.StandardKey.Copy, self.copy_selection),
                     (Qt.Key.Key_Delete, self.clear_cells), (Qt.Key.Key_Backspace, self.clear_cells)]
        for keys, slot in shortcuts:
            QShortcut(QKeySequence(keys), self, slot, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)

        self.worker.cell.connect(self._on_worker_cell)
        self.worker.finished.connect(self._on_worker_finished)
        self.worker.failed.connect(self._on_worker_failed)
        self.worker.status.connect(self._on_worker_status)
        self.model.changed.connect(self._counts_timer.start)
        for sig in (self.model.modelReset, self.model.columnsInserted, self.model.columnsRemoved,
                    self.model.headerDataChanged):
            sig.connect(self._refresh_columns)
        self._refresh_columns()
        self._update_counts()

    # -- public actions ----------------------------------------------------------------------------------------
    def set_sheet(self, sheet: Sheet, warnings: tuple[str, ...] = ()) -> None:
        """Replace the grid's content (a preset, an import, a paste with a header)."""
        if self._running:
            return
        self.model.set_sheet(sheet)
        self._show_notice(warnings)
        self.error.hide()

    def load_preset(self, preset: Preset) -> None:
        f = preset.fields
        self.set_sheet(Sheet(list(f.get("columns", [])), [list(r) for r in f.get("rows", [])],
                             dict(f.get("instructions", {}))))
        if "threshold" in preset.params:
            self.threshold.setValue(float(preset.params["threshold"]))
        self.preset_note.setText(preset.description)

    def import_csv(self, path: str | Path) -> bool:
        """Load a CSV/TSV file into the grid; a problem is shown in the tab. Return whether it loaded."""
        if self._running:
            self._show_error("Stop the running job before importing")
            return False
        try:
            loaded = read_csv(Path(path))
        except KnownError as exc:
            self._show_error(str(exc))
            return False
        self.set_sheet(loaded.sheet, loaded.warnings)
        self.message.emit(f"Imported {Path(path).name}: {len(loaded.sheet.rows):,} rows")
        return True

    def export_csv(self, path: str | Path) -> bool:
        """Write the grid as UTF-8 CSV (unsure cells empty); return whether it was written."""
        try:
            Path(path).write_text(to_csv(self.model.export_sheet()), encoding="utf-8")
        except OSError as exc:
            self._show_error(f"Cannot write {path}: {exc.strerror or exc}")
            return False
        self.message.emit(f"Saved {path}")
        return True

    def paste_text(self, text: str) -> None:
        """Paste tab-separated text: onto an empty grid it becomes the table (first line = header), otherwise
        it lands at the current cell (below the last row when there is none) and the grid grows to fit."""
        if self._running or not text.strip():
            return
        blank = all(not c.value and c.answer is None for row in self.model.cells for c in row)
        try:
            if blank and "\n" in text.strip():
                loaded = parse_table(text, "\t" if "\t" in text else None)
                self.set_sheet(loaded.sheet, loaded.warnings)
                rows = len(loaded.sheet.rows)
            else:
                current = self.view.currentIndex()  # no current cell: the rows go below the last one
                at = (current.row(), current.column()) if current.isValid() else (self.model.rowCount(), 0)
                rows, _ = self.model.paste(text, *at)
        except (KnownError, ValueError) as exc:
            self._show_error(str(exc))
            return
        self.message.emit(f"Pasted {rows:,} rows")

    @Slot()
    def paste_clipboard(self) -> None:
        if self.view.state() == QAbstractItemView.State.EditingState:
            return  # the cell editor pastes into itself
        self.paste_text(QGuiApplication.clipboard().text())

    @Slot()
    def copy_selection(self) -> None:
        QGuiApplication.clipboard().setText(self.model.copy_text(self.selected_cells()))

    @Slot()
    def add_row(self) -> None:
        if not self._running:
            self.model.insert_rows(self.view.currentIndex().row() + 1 if self.view.currentIndex().isValid()
                                   else self.model.rowCount())

    @Slot()
    def remove_rows(self) -> None:
        if not self._running:
            self.model.remove_rows([r for r, _ in self.selected_cells()])

    @Slot()
    def add_column(self) -> None:
        if not self._running:
            current = self.view.currentIndex()
            self.model.insert_column(current.column() + 1 if current.isValid() else self.model.columnCount())

    @Slot()
    def remove_columns(self) -> None:
        if not self._running:
            self.model.remove_columns([c for _, c in self.selected_cells()])

    def selected_cells(self) -> list[tuple[int, int]]:
        return sorted({(i.row(), i.column()) for i in self.view.selectionModel().selectedIndexes()})

    def select(self, row: int, column: int) -> None:
        """Make (row, column) the current and only selected cell."""
        self.view.selectionModel().setCurrentIndex(self.model.index(row, column),
                                                   QItemSelectionModel.SelectionFlag.ClearAndSelect)

    @Slot()
    def accept_cells(self) -> None:
        if self._running:
            return
        chosen = [rc for rc in self.selected_cells() if self.model.cells[rc[0]][rc[1]].answer is not None]
        if not chosen:
            chosen = [rc for rc in self.model.model_cells() if self.model.state(*rc) == "model"]
        n = self.model.accept(chosen)
        self.message.emit(f"Accepted {n} cell(s)")

    @Slot()
    def clear_cells(self) -> None:
        if not self._running and self.view.state() != QAbstractItemView.State.EditingState:
            self.model.clear_cells(self.selected_cells())

    @Slot()
    def fill(self) -> None:
        """Complete every empty cell (in rows with something known) on the worker."""
        if self._running:
            return
        sheet = self.model.prompt_sheet()
        try:
            prompts = fill_prompts(sheet, self.model.empty_cells())
        except KnownError as exc:
            self._show_error(str(exc))
            return
        if not prompts:
            self._show_error("No empty cell to fill: clear a cell, or add a row with a value in it")
            return
        self.error.hide()
        numeric = [c for c in range(len(sheet.columns)) if is_numeric_column([r[c] for r in sheet.rows])]
        self.model.set_pending({(p.row, p.column) for p in prompts})
        self._fill_total, self._done = len(prompts), 0
        self._set_running("fill")
        self.stats.setText(f"filling 0 / {len(prompts):,}…")
        self.worker.fill("fill", self.model_id(), prompts, numeric, self._max_tokens())

    @Slot()
    def evaluate(self) -> None:
        """Measure accuracy on the chosen column for each k with the current model; adds its line to the chart."""
        if self._running:
            return
        try:
            plan = plan_eval(self.model.prompt_sheet(), self.eval_column.currentIndex(),
                             parse_shots(self.shots.text()), DEFAULT_QUERIES)
        except KnownError as exc:
            self._show_error(str(exc))
            return
        self.error.hide()
        self._show_notice(plan.notes)
        self._eval_plan, self._eval_model = plan, self.model_id()
        self._fill_total, self._done = len(plan.cases), 0
        self._set_running("eval")
        self.stats.setText(f"evaluating 0 / {len(plan.cases)}…")
        self.worker.fill("eval", self._eval_model, plan.prompts, [plan.column] if plan.numeric else [],
                         self._max_tokens())

    @Slot()
    def stop(self) -> None:
        if self._running:
            self.stats.setText("stopping…")
            self.worker.stop()

    @Slot()
    def clear_chart(self) -> None:
        self.points = []
        self.chart.clear()
        self._show_numbers()

    def shutdown(self) -> None:
        """Stop a running fill and join the sheet's engine thread (MainWindow.closeEvent calls this)."""
        self.worker.shutdown()

    # -- worker events (GUI thread) ----------------------------------------------------------------------------
    @Slot(str, object)
    def _on_worker_cell(self, tag: str, answer: CellAnswer) -> None:
        if tag != self._running:
            return
        self._done += 1
        if tag == "fill":
            self.model.set_answer(answer)
            self.stats.setText(f"filling {self._done:,} / {self._fill_total:,}…")
        else:
            self.stats.setText(f"evaluating {self._done} / {self._fill_total}…")

    @Slot(str, object)
    def _on_worker_finished(self, tag: str, result: FillResult) -> None:
        if tag != self._running:
            return
        self._set_running(None)
        answered = sum(a is not None for a in result.answers)
        stopped = "stopped: " if result.cancelled else ""
        rate = f" · {answered / result.seconds:.1f} cells/s" if result.seconds > 0 and answered else ""
        if tag == "fill":
            self.model.set_pending(set())
            unsure = sum(1 for a in result.answers if a is not None and a.confidence < self.model.threshold)
            self.stats.setText(f"{stopped}filled {answered:,} of {len(result.answers):,} cells in "
                               f"{result.seconds:.1f} s{rate} · {unsure} unsure")
            self.fill_finished.emit(result)
            return
        plan = self._eval_plan
        assert plan is not None
        values = [None if a is None else a.value for a in result.answers]
        points = score(plan, self._eval_model, values, self.tolerance.value())
        self.points = [p for p in self.points if p.model != self._eval_model] + points
        if plan.numeric:
            self.metric_box.setCurrentIndex(self.metric_box.findData("numeric"))
        elif self.metric_box.currentData() == "numeric":
            self.metric_box.setCurrentIndex(self.metric_box.findData("normalised"))
        self.chart.set_points(self._eval_model, points, title=f"Accuracy on {plan.column_name!r}")
        self._show_numbers()
        self.stats.setText(f"{stopped}evaluated {answered} answers on {plan.column_name!r} in "
                           f"{result.seconds:.1f} s{rate}")
        self.eval_finished.emit(points)

    @Slot(str, str, bool)
    def _on_worker_failed(self, tag: str, message: str, is_bug: bool) -> None:
        if tag != self._running:
            return
        self._set_running(None)
        self.model.set_pending(set())
        self.stats.setText("failed")
        if is_bug:
            print(message, file=sys.stderr)
            self._show_error("Internal error: " + message.splitlines()[0], details=message)
        else:
            self._show_error(message)

    @Slot(str)
    def _on_worker_status(self, stage: str) -> None:
        if self._running:
            self.stats.setText(stage + "…")
        self.message.emit(stage)

    # -- widgets -----------------------------------------------------------------------------------------------
    @Slot(float)
    def _on_threshold_changed(self, value: float) -> None:
        self.model.set_threshold(value)

    @Slot(int)
    def _on_metric_changed(self, _index: int) -> None:
        self.chart.set_metric(self.metric_box.currentData())

    @Slot(int)
    def _on_preset_activated(self, index: int) -> None:
        if index > 0:
            self.load_preset(self._presets[index - 1])
        self.presets.setCurrentIndex(0)

    @Slot(int)
    def _on_header_double_clicked(self, column: int) -> None:
        name, ok = QInputDialog.getText(self, "Rename column", "Column name:", text=self.model.columns[column])
        if ok:
            self.model.rename_column(column, name)

    @Slot(QPoint)
    def _on_header_menu_requested(self, pos: QPoint) -> None:
        column = self.view.horizontalHeader().logicalIndexAt(pos)
        if column < 0 or self._running:
            return
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self._on_header_double_clicked(column))
        menu.addAction("Instruction…", lambda: self._ask_instruction(column))
        menu.addAction("Insert column after", lambda: self.model.insert_column(column + 1))
        menu.addAction("Remove column", lambda: self.model.remove_columns([column]))
        menu.exec(self.view.horizontalHeader().mapToGlobal(pos))

    def _ask_instruction(self, column: int) -> None:
        name = self.model.columns[column]
        text, ok = QInputDialog.getText(
            self, "Column instruction", f"How the model should write {name!r} (e.g. \"in millions\"); it is shown "
            "next to the column name in the prompt:", text=self.model.instructions.get(name, ""))
        if ok:
            self.model.set_instruction(column, text)

    @Slot()
    def _on_import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a table", filter="Tables (*.csv *.tsv *.txt);;All (*)")
        if path:
            self.import_csv(path)

    @Slot()
    def _on_export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the sheet", "sheet.csv", filter="CSV (*.csv)")
        if path:
            self.export_csv(path)

    @Slot()
    def _on_save_png_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the chart", "accuracy.png", filter="PNG (*.png)")
        if path and not self.chart.save_png(path):
            self._show_error(f"Cannot write {path}")

    @Slot()
    def _on_save_numbers_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the numbers", "accuracy.csv", filter="CSV (*.csv)")
        if path:
            self.save_numbers(path)

    def save_numbers(self, path: str | Path) -> bool:
        """Write the chart's numbers (model, k, n, exact, normalised, numeric) as CSV."""
        try:
            Path(path).write_text(points_to_csv(self.points), encoding="utf-8")
        except OSError as exc:
            self._show_error(f"Cannot write {path}: {exc.strerror or exc}")
            return False
        return True

    # -- drag and drop -----------------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if not self._running and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.import_csv(files[0])

    # -- helpers -----------------------------------------------------------------------------------------------
    def _max_tokens(self) -> int:
        return max(1, min(MAX_CELL_TOKENS, int(self.params.values()["max_new_tokens"])))

    def _set_running(self, job: str | None) -> None:
        self._running = job
        idle = job is None
        for w in (self.fill_button, self.eval_button, self.import_button, self.presets, self.add_row_button,
                  self.remove_row_button, self.add_column_button, self.remove_column_button, self.accept_button,
                  self.clear_button):
            w.setEnabled(idle)
        self.stop_button.setEnabled(not idle)
        # Rows keep their indices while the model writes into them: no edits until the job ends.
        self.view.setEditTriggers(self._edit_triggers if idle else QAbstractItemView.EditTrigger.NoEditTriggers)

    @Slot()
    def _refresh_columns(self) -> None:
        keep = self.eval_column.currentText()
        self.eval_column.clear()
        self.eval_column.addItems(self.model.columns)
        index = self.eval_column.findText(keep)
        self.eval_column.setCurrentIndex(index if index >= 0 else min(1, len(self.model.columns) - 1))

    @Slot()
    def _update_counts(self) -> None:
        m = self.model
        states = [m.state(r, c) for r in range(len(m.cells)) for c in range(len(m.columns))]
        typed = sum(1 for row in m.cells for c in row if c.value and c.answer is None)
        self.counts.setText(f"{len(m.cells):,} rows · {typed:,} typed · {states.count('model')} model · "
                            f"{states.count('unsure')} unsure")

    def _show_numbers(self) -> None:
        self.numbers.setRowCount(len(self.points))
        for i, p in enumerate(self.points):
            cells = [p.model, str(p.k), f"{p.exact:.0%}", f"{p.normalised:.0%}",
                     "–" if p.numeric is None else f"{p.numeric:.0%}"]
            for j, text in enumerate(cells):
                self.numbers.setItem(i, j, QTableWidgetItem(text))

    def _show_notice(self, lines: tuple[str, ...]) -> None:
        self.notice.setText("\n".join(lines))
        self.notice.setVisible(bool(lines))

    def _show_error(self, message: str, details: str = "") -> None:
        self.error.setText(message)
        self.error.setToolTip(details)
        self.error.show()
