"""The Sheet tab: a grid whose empty cells the model fills from the complete rows, with a confidence per cell,
and an evaluation that plots few-shot accuracy against the number of example rows k.

The tab puts together the table editor (``ui.sheet.grid``) and the evaluation panel (``ui.sheet.eval_panel``),
runs fills and evaluations on its worker (``ui.sheet.worker``), and saves itself into sessions: a draft of the
whole sheet (``playground.tasks.sheet_state``), and a run record per fill or evaluation
(``playground.tasks.sheet_runs``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QSplitter, QVBoxLayout, QWidget

from playground.domain.sheet import CONFIDENCE_HELP, CellAnswer, FillResult
from playground.domain.text import Constraint
from playground.store.records import Run
from playground.tasks.constraints import column_constraint
from playground.tasks.presets import Preset, load_presets
from playground.tasks.sheet import Sheet
from playground.tasks.sheet_eval import EvalPlan
from playground.tasks.sheet_runs import SheetJob
from playground.tasks.sheet_state import SheetState, table_to_dict
from ui.common.flow_layout import flow_row
from ui.common.mode_tab import ModeTab
from ui.common.model_drop import is_model, local_files
from ui.common.params_panel import PanelSpec, ParamsPanel
from ui.common.widgets import banner, hint_label, plain_label, preset_combo
from ui.sheet import runs, session
from ui.sheet.column_types import ColumnTypes
from ui.sheet.eval_panel import SheetEvalPanel
from ui.sheet.grid import SheetGrid
from ui.sheet.table_model import is_unsure
from ui.sheet.transfer import SheetTransfer
from ui.sheet.worker import Loader, SheetWorker

MAX_CELL_TOKENS = 32  # a cell is a short value; the panel's max tokens is capped here
COUNTS_MS = 200  # recount typed / model / unsure cells at most 5 times a second during a fill


class SheetTab(ModeTab):
    mode = "sheet"
    params_spec = PanelSpec(
        "Sheet", fields=("max_new_tokens",), defaults={"max_new_tokens": MAX_CELL_TOKENS},
        limits={"max_new_tokens": (1, MAX_CELL_TOKENS)}, labels={"max_new_tokens": "Max tokens per cell"},
        intro="Cells are filled greedily: each gets the model's most likely answer, the one its confidence "
              "measures. Only the answer's length is set here.")
    fill_finished = Signal(object)  # FillResult, after its cells are on screen
    eval_finished = Signal(object)  # list[EvalPoint], after the chart is drawn
    message = Signal(str)  # one line for the status bar

    def __init__(self, params: ParamsPanel, model_id: Callable[[], str], loader: Loader | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.params = params
        self.model_id = model_id
        self.worker = SheetWorker(loader, self)
        self._job: SheetJob | None = None  # the running fill or evaluation
        self._job_ids = itertools.count(1)
        self._restoring = False
        self.setAcceptDrops(True)

        # -- top: presets and notices
        self._presets: list[Preset] = load_presets("sheet")
        self.presets = preset_combo([p.name for p in self._presets])
        self.presets.activated.connect(self._on_preset_activated)
        self.preset_note = hint_label()
        self.notice = banner("notice")

        # -- the parts, and their widgets under the names callers and tests know
        self.grid = SheetGrid()
        self.eval_panel = SheetEvalPanel()
        self.model, self.view = self.grid.model, self.grid.view
        g, e = self.grid, self.eval_panel
        self.import_button, self.export_button = g.import_button, g.export_button
        self.add_row_button, self.remove_row_button = g.add_row_button, g.remove_row_button
        self.add_column_button, self.remove_column_button = g.add_column_button, g.remove_column_button
        self.accept_button, self.clear_button, self.legend = g.accept_button, g.clear_button, g.legend
        self.eval_column, self.shots, self.tolerance = e.eval_column, e.shots, e.tolerance
        self.metric_box, self.eval_button, self.clear_chart_button = e.metric_box, e.eval_button, e.clear_chart_button
        self.chart, self.numbers = e.chart, e.numbers
        self.transfer = SheetTransfer(self)  # the Fine-tune (LoRA) option: few-shot vs LoRA, saved adapters

        # -- filling
        self.fill_button, self.stop_button = self.run_buttons("Fill", self.fill, self.stop)
        self.fill_button.setToolTip("Complete every empty cell from the complete rows")
        self.fill_button.setDefault(True)
        self.stop_button.setToolTip("Stop after the current step; filled cells stay")
        self.also_disabled_while_running(self.eval_button, self.presets)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        self.threshold.setValue(self.model.threshold)
        self.threshold.setPrefix("unsure below ")
        self.threshold.setToolTip("Model cells with a confidence under this are shown as unsure (hatched, '?') "
                                  "and exported empty. " + CONFIDENCE_HELP)
        self.threshold.valueChanged.connect(self._on_threshold_changed)
        self.column_types = ColumnTypes()
        self.column_types.changed.connect(self._on_user_changed)
        self.stats = plain_label()  # quotes column names
        self.stats.setToolTip(CONFIDENCE_HELP)
        self.counts = plain_label()
        self._counts_timer = QTimer(self, interval=COUNTS_MS, singleShot=True)
        self._counts_timer.timeout.connect(self._update_counts)

        # -- layout
        top = QHBoxLayout()
        top.addWidget(self.presets)
        top.addWidget(self.preset_note, 1)
        fill_row = flow_row(self.fill_button, self.stop_button, self.threshold, self.column_types,  # wraps
                            self.counts)
        self.stats.setMinimumWidth(0)
        self.stats.setWordWrap(True)
        sheet_box = QWidget()
        sheet_lay = QVBoxLayout(sheet_box)
        sheet_lay.setContentsMargins(0, 0, 0, 0)
        sheet_lay.addWidget(self.grid, 1)
        sheet_lay.addWidget(fill_row)
        sheet_lay.addWidget(self.stats)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setObjectName("sheet_split")  # its sizes are remembered
        splitter.addWidget(sheet_box)
        splitter.addWidget(self.eval_panel)
        splitter.setSizes([430, 300])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.notice)
        layout.addWidget(self.error)
        layout.addWidget(splitter, 1)

        shortcuts = [(QKeySequence.StandardKey.Paste, g.paste_clipboard),
                     (QKeySequence.StandardKey.Copy, g.copy_selection),
                     (Qt.Key.Key_Delete, g.clear_cells), (Qt.Key.Key_Backspace, g.clear_cells)]
        for keys, slot in shortcuts:
            QShortcut(QKeySequence(keys), self, slot, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)

        self.worker.cell.connect(self._on_worker_cell)
        self.worker.finished.connect(self._on_worker_finished)
        self.worker.failed.connect(self._on_worker_failed)
        self.worker.status.connect(self._on_worker_status)
        g.message.connect(self.message)
        g.problem.connect(self.show_error)
        g.replaced.connect(self._on_grid_replaced)
        e.problem.connect(self.show_error)
        e.changed.connect(self._on_user_changed)
        e.eval_button.clicked.connect(lambda _checked=False: self.evaluate())
        self.model.changed.connect(self._on_model_changed)
        for sig in (self.model.modelReset, self.model.columnsInserted, self.model.columnsRemoved,
                    self.model.headerDataChanged):
            sig.connect(self._refresh_columns)
        self._refresh_columns()
        self._update_counts()

    # -- the table and the chart -----------------------------------------------------------------------------
    def set_sheet(self, sheet: Sheet, warnings: tuple[str, ...] = ()) -> None:
        """Replace the grid's content (a preset, an import, a paste with a header)."""
        self.grid.set_sheet(sheet, warnings)

    def load_preset(self, preset: Preset) -> None:
        f = preset.fields
        self.set_sheet(Sheet(list(f.get("columns", [])), [list(r) for r in f.get("rows", [])],
                             dict(f.get("instructions", {}))))
        if "threshold" in preset.params:
            self.threshold.setValue(float(preset.params["threshold"]))
        self.preset_note.setText(preset.description)

    def import_csv(self, path: str | Path) -> bool:
        """Load a CSV/TSV file into the grid; a problem is shown in the tab. Return whether it loaded."""
        return self.grid.import_csv(path)

    def export_csv(self, path: str | Path) -> bool:
        """Write the grid as UTF-8 CSV (unsure cells empty); return whether it was written."""
        return self.grid.export_csv(path)

    def paste_text(self, text: str) -> None:
        """Paste tab-separated text into the grid (see ``SheetGrid.paste_text``)."""
        self.grid.paste_text(text)

    def select(self, row: int, column: int) -> None:
        """Make (row, column) the current and only selected cell."""
        self.grid.select(row, column)

    def save_numbers(self, path: str | Path) -> bool:
        """Write the chart's numbers (model, k, n, exact, normalised, numeric) as CSV."""
        return self.eval_panel.save_numbers(path)

    # -- jobs ------------------------------------------------------------------------------------------------
    @Slot()
    def fill(self) -> None:
        """Complete every empty cell (in rows with something known) on the worker."""
        return runs.fill(self)

    def _constraints(self, sheet: Sheet) -> dict[int, Constraint]:
        """Column index -> the constraint of its type (typed columns only)."""
        out = {}
        for name, kind in self.column_types.types().items():
            if name in sheet.columns:
                c = sheet.columns.index(name)
                constraint = column_constraint(kind, [row[c] for row in sheet.rows])
                if constraint is not None:
                    out[c] = constraint
        return out

    @Slot()
    def evaluate(self) -> None:
        return runs.evaluate(self)

    @Slot()
    def stop(self) -> None:
        if self._job is not None:
            self.stats.setText("stopping…")
            self.worker.stop()

    def shutdown(self) -> None:
        """Stop a running fill and join the sheet's engine thread (MainWindow.closeEvent calls this)."""
        self.worker.shutdown()

    def _start(self, kind: str, model_id: str, total: int, params: dict[str, Any],
               plan: EvalPlan | None = None) -> SheetJob:
        self._job = SheetJob(kind, f"{kind}-{next(self._job_ids)}", model_id, table_to_dict(self.model.snapshot()),
                             params, total, plan)
        self.set_running(True)
        return self._job

    # -- worker events (GUI thread) ----------------------------------------------------------------------------
    @Slot(str, object)
    def _on_worker_cell(self, tag: str, answer: CellAnswer) -> None:
        job = self._job
        if job is None or tag != job.tag:
            return
        job.answers.append(answer)
        if job.kind == "fill":
            self.model.set_answer(answer)
            self.stats.setText(f"filling {len(job.answers):,} / {job.total:,}…")
        else:
            self.stats.setText(f"evaluating {len(job.answers)} / {job.total}…")

    @Slot(str, object)
    def _on_worker_finished(self, tag: str, result: FillResult) -> None:
        job = self._end(tag)
        if job is None:
            return
        answered = sum(a is not None for a in result.answers)
        stopped = "stopped: " if result.cancelled else ""
        rate = f" · {answered / result.seconds:.1f} cells/s" if result.seconds > 0 and answered else ""
        if job.kind == "fill":
            unsure = sum(1 for a in result.answers if a is not None and is_unsure(a, self.model.threshold))
            self.stats.setText(f"{stopped}filled {answered:,} of {len(result.answers):,} cells in "
                               f"{result.seconds:.1f} s{rate} · {unsure} unsure"
                               + (f" · {result.engine}" if result.engine else ""))
            self.run_ended.emit(job.finished(result))
            self.fill_finished.emit(result)
            return
        plan = job.plan
        assert plan is not None
        values = [None if a is None else a.value for a in result.answers]
        points = self.eval_panel.show_scores(plan, job.model_id, values)
        self.stats.setText(f"{stopped}evaluated {answered} answers on {plan.column_name!r} in "
                           f"{result.seconds:.1f} s{rate}")
        job.params["tolerance"] = self.tolerance.value()  # the one the scores used
        self.run_ended.emit(job.finished(result, points))
        self.eval_finished.emit(points)

    @Slot(str, str, bool)
    def _on_worker_failed(self, tag: str, message: str, is_bug: bool) -> None:
        job = self._end(tag)
        if job is None:
            return
        self.stats.setText("failed")
        self.run_ended.emit(job.failed(self.show_failure(message, is_bug)))

    def _end(self, tag: str) -> SheetJob | None:
        """The running job if ``tag`` is its, now ended; None for events of a job the tab has let go."""
        job = self._job
        if job is None or tag != job.tag:
            return None
        self.model.set_pending(set())  # before unlocking: clearing the marks is no user edit
        self._job = None
        self.set_running(False)
        return job

    @Slot(str)
    def _on_worker_status(self, stage: str) -> None:
        if self._job is not None:
            self.stats.setText(stage + "…")
        self.message.emit(stage)

    # -- sessions --------------------------------------------------------------------------------------------
    def draft(self) -> dict[str, Any]:
        """The whole sheet as saved in the session's draft: table, marks, threshold, evaluation and chart."""
        return session.draft(self)

    def restore(self, draft: dict[str, Any], last_run: Run | None) -> None:
        """Open a session: its draft sheet (an empty draft is a new, empty sheet)."""
        return session.restore(self, draft, last_run)

    def show_run(self, run: Run) -> None:
        """Re-open a past run: its table, with the cells it filled (a fill) or its chart (an evaluation)."""
        return session.show_run(self, run)

    def _load(self, state: SheetState) -> None:
        with self._quietly():
            self.model.load(state)
            self.threshold.setValue(state.threshold)
            self.model.set_threshold(self.threshold.value())
            self.eval_panel.load_from(state)
        for label in (self.notice, self.error):
            label.hide()
        self.preset_note.clear()
        self.stats.clear()
        self._update_counts()

    def _abandon_job(self) -> None:
        """Another sheet is about to be shown: stop the running job and drop whatever it still sends."""
        if self._job is not None:
            self.worker.stop()
            self._end(self._job.tag)
            self.message.emit("Stopped the running sheet job: another sheet was opened")

    @contextmanager
    def _quietly(self) -> Iterator[None]:
        self._restoring = True
        try:
            yield
        finally:
            self._restoring = False

    @Slot()
    def _on_user_changed(self) -> None:
        if not self._restoring:
            self.changed.emit()

    @Slot()
    def _on_model_changed(self) -> None:
        self._counts_timer.start()
        if self._job is None:  # the model writing cells is no edit; its run record saves the draft
            self._on_user_changed()

    # -- widgets -----------------------------------------------------------------------------------------------
    @Slot(float)
    def _on_threshold_changed(self, value: float) -> None:
        self.model.set_threshold(value)
        self._on_user_changed()

    @Slot(int)
    def _on_preset_activated(self, index: int) -> None:
        if index > 0:
            self.load_preset(self._presets[index - 1])
        self.presets.setCurrentIndex(0)

    @Slot(object)
    def _on_grid_replaced(self, warnings: tuple[str, ...]) -> None:
        self._show_notice(warnings)
        self.clear_error()

    # -- drag and drop -----------------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        # models dropped here are the window's to add (ignored, the event goes on to it)
        if self._job is None and any(not is_model(f) for f in local_files(event.mimeData())):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        files = [f for f in local_files(event.mimeData()) if not is_model(f)]
        if files:
            event.acceptProposedAction()
            self.import_csv(files[0])

    # -- helpers -----------------------------------------------------------------------------------------------
    def _max_tokens(self) -> int:
        return max(1, min(MAX_CELL_TOKENS, int(self.params.values()["max_new_tokens"])))

    def _on_running_changed(self, running: bool) -> None:
        self.grid.set_locked(running)  # rows keep their indices while the model writes into them

    @Slot()
    def _refresh_columns(self) -> None:
        self.eval_panel.set_columns(self.model.columns)
        self.column_types.set_columns(list(self.model.columns))

    @Slot()
    def _update_counts(self) -> None:
        m = self.model
        states = [m.state(r, c) for r in range(len(m.cells)) for c in range(len(m.columns))]
        typed = sum(1 for row in m.cells for c in row if c.value and c.answer is None)
        self.counts.setText(f"{len(m.cells):,} rows · {typed:,} typed · {states.count('model')} model · "
                            f"{states.count('unsure')} unsure")

    def _show_notice(self, lines: tuple[str, ...]) -> None:
        self.notice.setText("\n".join(lines))
        self.notice.setVisible(bool(lines))
