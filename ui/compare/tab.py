"""The Compare tab: one source + prompt through 2–6 columns (model + settings), side by side, with where they
diverge and which is most confident; an image X/Y grid and layout variants as sub-views."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from playground.domain.text import TokenEvent
from playground.errors import ParameterError
from playground.runtime.model_pool import Loader, PoolState, default_budget_bytes
from playground.store.records import Run
from playground.tasks.compare import (
    MAX_COLUMNS,
    MIN_COLUMNS,
    REQUEST_KEYS,
    SWEEP_KEYS,
    column_label,
    column_stats,
    stats_text,
)
from playground.tasks.compare_run import ColumnOutcome
from playground.tasks.compare_store import run_record
from ui.common.flow_layout import flow_row
from ui.common.mode_tab import ModeTab
from ui.common.params_panel import FIELDS, PanelSpec, ParamsPanel
from ui.common.streaming import REPAINT_MS, FirstAtOnce
from ui.common.widgets import ElidedLabel, TextEditor
from ui.compare import column_tools
from ui.compare import session as compare_session
from ui.compare.column import CompareColumn
from ui.compare.image_grid import ImageGridView
from ui.compare.layout_variants import LayoutVariantsView
from ui.compare.strip import ColumnStrip
from ui.compare.worker import CompareWorker


class CompareTab(ModeTab):
    mode = "compare"
    params_spec = PanelSpec("Compare", fields=tuple(k for k in FIELDS if k in REQUEST_KEYS),
                            intro="The defaults of every column: a column's own key=value settings override them.")
    open_image_settings = Signal(dict)  # a grid cell's settings, for the Image tab's apply_settings

    def __init__(self, params: ParamsPanel, model_id: Callable[[], str], parent: QWidget | None = None,
                 text_loader: Loader | None = None, image_loader: Any = None,
                 budget_bytes: int | None = None) -> None:
        super().__init__(parent)
        self.params = params
        self.model_id = model_id
        self.run_source: Callable[[], list[Run]] | None = None  # the session's compare runs (set by the window)
        self.worker = CompareWorker(text_loader, budget_bytes if budget_bytes is not None else default_budget_bytes(),
                                    self)
        self.worker.column_started.connect(self._on_column_started)
        self.worker.token.connect(self._on_token)
        self.worker.column_done.connect(self._on_column_done)
        self.worker.all_done.connect(self._on_all_done)
        self.worker.failed.connect(self._on_failed)
        self.worker.pool_changed.connect(self._on_pool_changed)
        self.worker.status.connect(self._on_status)
        self.columns: list[CompareColumn] = []
        self._model_choices: list[str] = []  # offered while typing a column's model (local and remote ids)
        self._run_inputs: dict[str, Any] = {}
        self._pending: dict[int, list[TokenEvent]] = {}
        self._flush = QTimer(self, interval=REPAINT_MS)  # streamed tokens painted in batches
        self._first = FirstAtOnce()
        self._flush.timeout.connect(self._flush_tokens)

        self.source = TextEditor()
        self.source.setPlaceholderText("Source text (optional): comes before the prompt, the same for every column")
        self.prompt = TextEditor()
        self.prompt.setPlaceholderText("Prompt: every column completes source + prompt")
        self.add_button = QPushButton("+ Column")
        self.add_button.clicked.connect(lambda _checked=False: self.add_column({}))
        self.probabilities = QCheckBox("Probability colours")
        self.probabilities.toggled.connect(self._on_probabilities_toggled)
        self.sweep_key = QComboBox()
        self.sweep_key.addItems(list(SWEEP_KEYS))
        self.sweep_values = QLineEdit()
        self.sweep_values.setPlaceholderText("values, e.g. 0, 0.7, 1.2")
        self.sweep_values.returnPressed.connect(self.make_sweep)
        sweep_button = QPushButton("Sweep → columns")
        sweep_button.setToolTip("Replace the columns: the first column with the parameter set to each value")
        sweep_button.clicked.connect(lambda _checked=False: self.make_sweep())
        self.budget = QSpinBox()
        self.budget.setRange(1, 1_000_000)
        self.budget.setSuffix(" MB")
        self.budget.setValue(max(1, self.worker.pool.budget_bytes // 2**20))
        self.budget.setToolTip("Models for a comparison are loaded within this budget; the least recently used "
                               "is unloaded to make room")
        self.budget.editingFinished.connect(self._on_budget_edited)
        self.memory = ElidedLabel(minimum=120)  # model paths: shortened, never widening the window
        self.status = ElidedLabel()

        text_view = QWidget()
        # Ctrl+Enter runs what the visible view shows (text columns here; the grid and variants bind their own).
        self.run_button, self.stop_button = self.run_buttons("Run all", self.run_all, self.stop, run_keys_on=text_view)
        self.also_disabled_while_running(self.add_button)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.setObjectName("compare_inputs")  # its sizes are remembered
        top.addWidget(self.source)
        top.addWidget(self.prompt)
        self.sweep_values.setMinimumWidth(120)
        bar = flow_row(self.run_button, self.stop_button, self.add_button, self.probabilities, QLabel("  Sweep"),
                       self.sweep_key, self.sweep_values, sweep_button, stretch=(self.sweep_values,))
        mem = QHBoxLayout()
        mem.addWidget(QLabel("Model memory budget"))
        mem.addWidget(self.budget)
        mem.addWidget(self.memory, 1)
        mem.addWidget(self.status)
        scroll = ColumnStrip()  # as tall as the view: a short window scrolls, never cuts off the footers
        self._strip_layout = scroll.strip_layout
        scroll.setToolTip("Columns override the Parameters panel with their own key=value settings. Wavy "
                          "underlines: words that differ from the reference column; ★: the most confident column "
                          "(highest mean token log-probability).")
        lower = QWidget()
        lv = QVBoxLayout(lower)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(bar)
        lv.addWidget(scroll, 1)
        lv.addLayout(mem)
        lv.addWidget(self.error)
        # The inputs above the columns, resizable (a splitter recomputes its own maximum: a cap on it is lost).
        split = QSplitter(Qt.Orientation.Vertical)
        split.setObjectName("compare_text")  # its sizes are remembered
        split.addWidget(top)
        split.addWidget(lower)
        split.setStretchFactor(1, 1)
        split.setCollapsible(1, False)
        split.setSizes([90, 600])
        QVBoxLayout(text_view).addWidget(split)

        self.image_grid = ImageGridView(loader=image_loader)
        self.image_grid.open_image_settings.connect(self.open_image_settings)
        self.image_grid.run_ended.connect(self.run_ended)
        self.layouts = LayoutVariantsView(self.worker, self)
        self.layouts.run_ended.connect(self.run_ended)
        self.views = QTabWidget()
        self.views.addTab(text_view, "Text")
        self.views.addTab(self.image_grid, "Image X/Y grid")
        self.views.addTab(self.layouts, "Layout variants")
        layout = QVBoxLayout(self)
        layout.addWidget(self.views)
        self.source.textChanged.connect(self.changed)
        self.prompt.textChanged.connect(self.changed)
        params.changed.connect(self.relabel)
        self.set_columns([{"temperature": 0.0}, {"temperature": 1.0}])
        self._on_pool_changed(self.worker.pool.state())

    # -- columns -----------------------------------------------------------------------------------------------
    def add_column(self, spec: dict[str, Any], after: CompareColumn | None = None) -> CompareColumn | None:
        if len(self.columns) >= MAX_COLUMNS:
            self.show_error(f"At most {MAX_COLUMNS} columns")
            return None
        column = CompareColumn(spec)
        column.set_model_choices(self._model_choices)
        column.duplicate_requested.connect(self._on_duplicate_requested)
        column.remove_requested.connect(self._on_remove_requested)
        column.rerun_requested.connect(self._on_rerun_requested)
        column.changed.connect(self._on_column_changed)
        column.reference.toggled.connect(self._on_reference_toggled)
        column.set_show_probabilities(self.probabilities.isChecked())
        index = self.columns.index(after) + 1 if after in self.columns else len(self.columns)
        self.columns.insert(index, column)
        self._strip_layout.insertWidget(index, column, 1)
        if len(self.columns) == 1:
            column.reference.setChecked(True)
        self._relabel()
        self.changed.emit()
        return column

    def set_columns(self, specs: list[dict[str, Any]], reference: int = 0) -> None:
        for column in list(self.columns):
            self._remove(column)
        for spec in specs[:MAX_COLUMNS]:
            self.add_column(spec)
        if self.columns:
            self.columns[min(max(reference, 0), len(self.columns) - 1)].reference.setChecked(True)

    def specs(self) -> list[dict[str, Any]]:
        return [c.spec() for c in self.columns]

    def reference_index(self) -> int:
        return next((i for i, c in enumerate(self.columns) if c.reference.isChecked()), 0)

    def _remove(self, column: CompareColumn) -> None:
        self.columns.remove(column)
        column.setParent(None)
        column.deleteLater()

    @Slot(object)
    def _on_duplicate_requested(self, column: CompareColumn) -> None:
        try:
            self.add_column(column.spec(), after=column)
        except ParameterError as exc:
            self.show_error(str(exc))

    @Slot(object)
    def _on_remove_requested(self, column: CompareColumn) -> None:
        if self.running or len(self.columns) <= MIN_COLUMNS:
            self.show_error(f"A comparison needs at least {MIN_COLUMNS} columns")
            return
        was_reference = column.reference.isChecked()
        self._remove(column)
        if was_reference:
            self.columns[0].reference.setChecked(True)
        self._relabel()
        self.changed.emit()

    @Slot()
    def _on_column_changed(self) -> None:
        self._relabel()
        self.changed.emit()

    @Slot(bool)
    def _on_reference_toggled(self, on: bool) -> None:
        if on:
            for column in self.columns:
                if column.reference.isChecked() and column is not self.sender().parent():
                    column.reference.setChecked(False)
            self.update_diffs()

    @Slot()
    def relabel(self) -> None:
        """Titles name each column's model and settings (the window's model and the panel fill in the rest)."""
        self._relabel()

    def _relabel(self) -> None:
        defaults = self.defaults()
        for i, column in enumerate(self.columns):
            try:
                column.set_title(f"{i + 1}. {column_label(column.spec(), defaults)}")
            except ParameterError:
                column.set_title(f"{i + 1}. (fix the settings)")

    @Slot()
    def make_sweep(self) -> None:
        """Replace the columns by the first column with the chosen parameter set to each value."""
        return column_tools.make_sweep(self)

    def set_model_choices(self, model_ids: list[str]) -> None:
        """The model ids every column's model field offers as you type (remote ones included)."""
        self._model_choices = list(model_ids)
        for column in self.columns:
            column.set_model_choices(self._model_choices)

    # -- running -----------------------------------------------------------------------------------------------
    def defaults(self) -> dict[str, Any]:
        values = dict(self.params.values())
        values.pop("n", None)
        return {"model": self.model_id(), **values}

    @Slot()
    def run_all(self, only: set[int] | None = None) -> None:
        """Generate every column (or only those in ``only``, keeping the others' outputs)."""
        if self.running or self.layouts.running:
            return
        try:
            specs = self.specs()
        except ParameterError as exc:
            self.show_error(str(exc))
            return
        prompt = self.prompt.toPlainText()
        source = self.source.toPlainText()
        if not (prompt or source).strip():
            self.show_error("Type a prompt first")
            return
        defaults = self.defaults()
        self._run_inputs = {"source": source, "prompt": prompt, "specs": specs, "defaults": defaults}
        self.clear_error()
        for i, column in enumerate(self.columns):
            if only is None or i in only:
                column.mark_waiting()
        self.set_running(True)
        self.worker.run(specs, defaults, source, prompt, only)

    def rerun_column(self, index: int) -> None:
        """Re-run one column (after changing it); the others keep their outputs."""
        self.run_all({index})

    @Slot(object)
    def _on_rerun_requested(self, column: CompareColumn) -> None:
        if column in self.columns:
            self.rerun_column(self.columns.index(column))

    @Slot()
    def stop(self) -> None:
        """Stop the running comparison (text columns or layout variants); finished outputs stay."""
        if self.running or self.layouts.running:
            self.worker.stop()
            self.status.setText("stopping…")

    @Slot(int, str)
    def _on_column_started(self, index: int, model: str) -> None:
        if self.running and index < len(self.columns):  # not running: a layout-variants job
            self.columns[index].start()
            self.status.setText(f"column {index + 1}: {model}")

    @Slot(int, object)
    def _on_token(self, index: int, event: TokenEvent) -> None:
        if self.running:
            self._pending.setdefault(index, []).append(event)
            if self._first.now():
                self._flush_tokens()

    @Slot()
    def _flush_tokens(self) -> None:
        pending, self._pending = self._pending, {}
        for index, events in pending.items():
            if index < len(self.columns):
                self.columns[index].append_tokens(events)

    @Slot(object)
    def _on_column_done(self, outcome: ColumnOutcome) -> None:
        self._flush_tokens()
        if not self.running or outcome.index >= len(self.columns):
            return
        result = outcome.to_json()
        column = self.columns[outcome.index]
        column.finish(result, "" if "error" in result else stats_text(column_stats(result)))
        self.update_diffs()

    @Slot(bool)
    def _on_all_done(self, cancelled: bool) -> None:
        if not self.running:
            return
        self._flush_tokens()
        self.set_running(False)
        self.status.setText("stopped" if cancelled else "done")
        inputs = self._run_inputs
        results = [c.result for c in self.columns]
        run = run_record(inputs["source"], inputs["prompt"], inputs["specs"], inputs["defaults"], results,
                         status="cancelled" if cancelled else None)
        run.inputs["reference"] = self.reference_index()
        self.run_ended.emit(run)

    @Slot(str, bool)
    def _on_failed(self, message: str, is_bug: bool) -> None:
        self.show_failure(message, is_bug)

    def update_diffs(self) -> None:
        """Underline where each finished column departs from the reference; star the most confident."""
        return column_tools.update_diffs(self)

    def _on_running_changed(self, running: bool) -> None:
        if running:
            self._first.start()
            self._flush.start()
        else:
            self._flush.stop()

    @Slot(object)
    def _on_pool_changed(self, state: PoolState) -> None:
        self.memory.setText("Loaded: " + state.describe())

    @Slot()
    def _on_budget_edited(self) -> None:
        self.worker.set_budget(self.budget.value() * 2**20)

    @Slot(str)
    def _on_status(self, text: str) -> None:
        self.status.setText(text)

    @Slot(bool)
    def _on_probabilities_toggled(self, on: bool) -> None:
        for column in self.columns:
            column.set_show_probabilities(on)

    # -- sessions (ui/compare/session.py) -----------------------------------------------------------------
    def draft(self) -> dict[str, Any]:
        return compare_session.draft(self)

    def restore(self, draft: dict[str, Any], last_run: Run | None) -> None:
        compare_session.restore(self, draft, last_run)

    def show_run(self, run: Run) -> None:
        """Re-open a past comparison: its inputs, columns and outputs (re-run it after changing a column)."""
        compare_session.show_run(self, run)

    def shutdown(self) -> None:
        self._flush.stop()
        self.image_grid.shutdown()
        self.layouts.shutdown()
        self.worker.shutdown()
