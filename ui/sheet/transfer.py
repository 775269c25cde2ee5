"""The Sheet's fine-tune option: few-shot vs LoRA on one chart, and saving a fine-tuned adapter.

``TransferControls`` is a row under the Evaluate panel's chart: a "Fine-tune (LoRA)" check box (Evaluate then
compares few-shot prompting with LoRA fine-tuning on the same k rows: three lines), the epochs, "Save adapter…" and a
progress bar. ``SheetTransfer`` runs those jobs on the tab's worker, through the tab's job bookkeeping (run/stop
buttons, run records), and draws the points as they come. Qt-free work: ``playground.tasks.sheet_transfer``.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QInputDialog, QProgressBar, QSpinBox, QWidget

from playground.domain.models import is_remote
from playground.engine.lora import DEFAULT_EPOCHS, LoraSettings, TrainProgress
from playground.errors import KnownError
from playground.models.adapters import adapter_id, check_name
from playground.tasks.sheet_eval import DEFAULT_QUERIES, parse_shots
from playground.tasks.sheet_transfer import (
    TrainedAdapter,
    TransferPoint,
    TransferProgress,
    TransferResult,
    plan_transfer,
    train_run,
    transfer_run,
)
from ui.sheet.grid import action_button

if TYPE_CHECKING:
    from ui.sheet.tab import SheetTab


class TransferControls(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fine_tune = QCheckBox("Fine-tune (LoRA)")
        self.fine_tune.setToolTip("Evaluate also trains a LoRA adapter on the same k rows and asks it without and "
                                  "with them in the prompt: three lines (few-shot, LoRA 0-shot, LoRA + few-shot) "
                                  "on the same held-out rows")
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 200)
        self.epochs.setValue(DEFAULT_EPOCHS)
        self.epochs.setSuffix(" epochs")
        self.epochs.setToolTip("Passes over the k rows when fine-tuning")
        self.save_button = action_button("Save adapter…", "Fine-tune on every complete row of the table and save "
                                         "the adapter as a model variant (MODEL+NAME), usable in every mode")
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(140)
        self.bar.setFormat("%v / %m steps")
        self.bar.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (self.fine_tune, self.epochs, self.save_button, self.bar):
            layout.addWidget(w)

    def settings(self) -> LoraSettings:
        return LoraSettings(epochs=self.epochs.value())


class SheetTransfer(QObject):
    """Runs fine-tuning jobs for a SheetTab (it drives the tab's job slots: only one job at a time)."""

    finished = Signal(object)  # list[TransferPoint] of a transfer, after the chart is drawn
    adapter_saved = Signal(str)  # the new adapter's model id: model pickers should list it

    def __init__(self, tab: SheetTab) -> None:
        super().__init__(tab)
        # Weak: a tab <-> controller cycle would leave the tab to the garbage collector, which may run on the
        # worker thread, and a widget freed there crashes Qt (shiboken defers its deletion to the GUI thread).
        self._tab = weakref.ref(tab)
        self.controls = TransferControls()
        tab.eval_panel.tools_row.insertWidget(0, self.controls)
        tab.also_disabled_while_running(self.controls.save_button, self.controls.fine_tune)
        self.controls.save_button.clicked.connect(self._on_save_clicked)
        self.points: list[TransferPoint] = []
        self._title = ""
        tab.worker.progress.connect(self._on_worker_progress)
        tab.worker.points.connect(self._on_worker_points)
        tab.worker.done.connect(self._on_worker_done)
        tab.worker.failed.connect(self._on_worker_failed)

    @property
    def tab(self) -> SheetTab:
        tab = self._tab()
        assert tab is not None, "the controller lives as the tab's child"
        return tab

    def wanted(self) -> bool:
        """True when Evaluate should compare with fine-tuning."""
        return self.controls.fine_tune.isChecked()

    # -- starting --------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Few-shot vs LoRA on the chosen column and ks with the current model (the tab checked it is idle)."""
        tab, panel = self.tab, self.tab.eval_panel
        model_id = tab.model_id()
        try:
            if is_remote(model_id):
                raise KnownError(f"Fine-tuning needs a local model; {model_id} runs on a remote server")
            plan = plan_transfer(tab.model.prompt_sheet(), panel.eval_column.currentIndex(),
                                 parse_shots(panel.shots.text()), DEFAULT_QUERIES)
            settings = self.controls.settings().check()
        except KnownError as exc:
            tab.show_error(str(exc))
            return
        tab.clear_error()
        tab._show_notice(plan.notes)
        params = {"column": plan.column_name, "shots": list(plan.shots), "queries": len(plan.queries),
                  "tolerance": panel.tolerance.value(), "lora": settings.as_dict()}
        job = tab._start("transfer", model_id, len(plan.shots), params, plan)
        self.points = []
        self._title = f"Few-shot vs LoRA on {plan.column_name!r} · {model_id}"
        panel.show_lines([], self._title, "numeric" if plan.numeric else "normalised")
        tab.stats.setText("few-shot: asking the base model…")
        tab.worker.transfer(job.tag, model_id, plan, settings, panel.tolerance.value())

    @Slot()
    def _on_save_clicked(self) -> None:
        model_id = self.tab.model_id()
        name, ok = QInputDialog.getText(self.tab, "Save a fine-tuned adapter",
                                        f"Train on every complete row and save as {model_id}+NAME.\nName:")
        if ok and name.strip():
            self.train_adapter(name)

    def train_adapter(self, name: str) -> None:
        """Train on every complete row for the chosen column and save as ``MODEL+name``."""
        tab, panel = self.tab, self.tab.eval_panel
        if tab._job is not None:
            return
        model_id = tab.model_id()
        try:
            name = check_name(name)
            if is_remote(model_id):
                raise KnownError(f"Fine-tuning needs a local model; {model_id} runs on a remote server")
            sheet = tab.model.prompt_sheet()
            column = panel.eval_column.currentIndex()
            if not 0 <= column < len(sheet.columns):
                raise KnownError("Choose the column the adapter should learn to fill")
            settings = self.controls.settings().check()
        except KnownError as exc:
            tab.show_error(str(exc))
            return
        tab.clear_error()
        params = {"column": sheet.columns[column], "name": name, "lora": settings.as_dict()}
        job = tab._start("train", model_id, 0, params)
        tab.stats.setText(f"fine-tuning {adapter_id(model_id, name)}…")
        tab.worker.train_adapter(job.tag, model_id, sheet, column, name, settings)

    # -- worker events (GUI thread) ----------------------------------------------------------------------------
    def _mine(self, tag: str) -> bool:
        job = self.tab._job
        return job is not None and job.tag == tag and job.kind in ("transfer", "train")

    @Slot(str, object)
    def _on_worker_progress(self, tag: str, progress: object) -> None:
        if not self._mine(tag):
            return
        train = progress.train if isinstance(progress, TransferProgress) else progress
        if isinstance(progress, TransferProgress):
            self.tab.stats.setText(progress.describe() + "…")
        elif isinstance(train, TrainProgress):
            self.tab.stats.setText(f"training step {train.step}/{train.steps} · loss {train.loss:.3f} · "
                                   f"ETA {train.eta_s:.0f} s…")
        bar = self.controls.bar
        bar.show()
        if isinstance(train, TrainProgress):
            bar.setRange(0, train.steps)
            bar.setValue(train.step)
        else:
            bar.setRange(0, 0)  # asking the model: busy

    @Slot(str, object)
    def _on_worker_points(self, tag: str, points: list[TransferPoint]) -> None:
        if not self._mine(tag):
            return
        self.points += points
        self._draw()

    @Slot(str, object)
    def _on_worker_done(self, tag: str, result: object) -> None:
        if not self._mine(tag):
            return
        job = self.tab._end(tag)
        assert job is not None
        self.controls.bar.hide()
        status = "cancelled" if getattr(result, "cancelled", False) else "done"
        if isinstance(result, TrainedAdapter):
            if result.info is None:
                self.tab.stats.setText("stopped: no adapter saved")
                status = "cancelled"
            else:
                self.tab.stats.setText(f"saved {result.info.id}: {result.rows} rows in {result.seconds:.1f} s")
                self.tab.message.emit(f"Adapter {result.info.id} saved: pick it in the model list")
                self.adapter_saved.emit(result.info.id)
            self.tab.run_ended.emit(train_run(job.table, job.model_id, job.params, str(job.params["column"]),
                                              result, result.seconds, status))
            return
        assert isinstance(result, TransferResult)
        self.points = list(result.points)
        self._draw()
        train = sorted({(p.k, p.train_s) for p in result.points if p.method == "lora" and p.k > 0})
        times = ", ".join(f"k={k}: {s:.1f} s" for k, s in train)
        stopped = "stopped: " if result.cancelled else ""
        self.tab.stats.setText(f"{stopped}few-shot vs LoRA in {result.seconds:.0f} s on {result.device}"
                               + (f" · training {times}" if times else ""))
        job.params["tolerance"] = self.tab.eval_panel.tolerance.value()
        self.tab.run_ended.emit(transfer_run(job.table, job.model_id, job.params, str(job.params["column"]),
                                             result.points, result.seconds, status))
        self.finished.emit(list(result.points))

    @Slot(str, str, bool)
    def _on_worker_failed(self, _tag: str, _message: str, _is_bug: bool) -> None:
        self.controls.bar.hide()  # the tab shows the failure and records the run

    def _draw(self) -> None:
        panel = self.tab.eval_panel
        panel.show_lines([p.chart_point() for p in self.points], self._title, panel.metric_box.currentData())
