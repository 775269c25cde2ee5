"""The Inspect tab: source text + prompt (+ a completion) in; attention per layer and head, each layer's
predictions (logit lens) and probes out. Computed on the chosen model's weights loaded again with eager attention,
so the Prompt tab's engine keeps its fast path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from playground.domain.inspect import MAX_NEW_TOKENS, Inspection, InspectRequest, ProbeRow
from playground.domain.models import is_remote
from playground.store.records import Run
from playground.tasks.inspect_run import inspect_run, lens_from_json, request_of
from playground.tasks.probe import ProbeRequest, probe_run, rows_of
from ui.common.mode_tab import ModeTab
from ui.common.widgets import banner, hint_label, text_editor
from ui.inspect.attention_view import AttentionView
from ui.inspect.heads_grid import AVERAGE
from ui.inspect.lens_view import LensView
from ui.inspect.probe_panel import ProbePanel
from ui.inspect.worker import InspectWorker

EAGER_NOTE = ("Inspect runs the chosen model's own weights a second time with transformers' eager attention (the "
              "only kind that shows its weights), loaded when this tab opens; the Prompt tab's engine stays on "
              "its fast path.")
PromptInputs = Callable[[], tuple[str, str, str]]  # (source, prompt, completion) of the Prompt tab


def prompt_tab_inputs(tab: Any) -> tuple[str, str, str]:
    """The Prompt tab's source, prompt and its first completion as shown."""
    completion = "".join(t.text for t in tab.output.tokens if t.completion == 0)
    return tab.source.toPlainText(), tab.prompt.toPlainText(), completion


class InspectTab(ModeTab):
    mode = "inspect"

    def __init__(self, model_id: Callable[[], str], prompt_inputs: PromptInputs | None = None,
                 worker: InspectWorker | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_id = model_id
        self.prompt_inputs = prompt_inputs
        self.worker = worker or InspectWorker(parent=self)
        self.worker.inspected.connect(self._on_inspected)
        self.worker.lens_ready.connect(self._on_lens_ready)
        self.worker.probed.connect(self._on_probed)
        self.worker.failed.connect(self._on_failed)
        self.worker.status.connect(self._on_worker_status)
        self.inspection: Inspection | None = None
        self._request: InspectRequest | None = None
        self._probe_request: ProbeRequest | None = None
        self._job = ""  # "inspect" | "probe" while one runs
        self._stopping = False
        self._pending_lens: set[int] = set()
        self._preloaded = ""

        self.source = text_editor("Source text: examples before the prompt (as in the Prompt tab)")
        self.prompt = text_editor("Prompt, e.g. Country: Italy↵Capital:")
        self.completion = text_editor("Completion (optional): text after the prompt to inspect too")
        self.new_tokens = QSpinBox()
        self.new_tokens.setRange(0, MAX_NEW_TOKENS)
        self.new_tokens.setToolTip("Continue greedily by this many tokens first, to see what generated tokens "
                                   "attend to")
        self.from_prompt = QPushButton("From Prompt tab")
        self.from_prompt.setToolTip("Copy the Prompt tab's source text, prompt and completion here")
        self.from_prompt.clicked.connect(lambda _=False: self.copy_from_prompt_tab())
        self.from_prompt.setEnabled(prompt_inputs is not None)
        inputs = QWidget()  # Ctrl+Enter inspects here, and runs the probe in the Probe view
        self.run_button, self.stop_button = self.run_buttons("Inspect", self.run, self.stop, inputs)
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        self.note = banner("notice")
        self.note.setText(EAGER_NOTE)
        self.note.show()

        self.attention = AttentionView()
        self.lens = LensView()
        self.probe = ProbePanel()
        self.views = QTabWidget()
        self.views.addTab(self.attention, "Attention")
        self.views.addTab(self.lens, "Layer by layer")
        self.views.addTab(self.probe, "Probe")
        self.attention.selection_changed.connect(self._on_selection_changed)
        self.lens.positions_needed.connect(self._on_lens_needed)
        self.lens.position_clicked.connect(self.attention.select_token)
        self.probe.run_button.clicked.connect(lambda _=False: self.run_probe())
        self.probe.message.connect(self.status.setText)
        self.also_disabled_while_running(self.probe.run_button)
        self.bind_keys(self.run_probe, None, self.probe)

        left = QVBoxLayout(inputs)
        left.setContentsMargins(0, 0, 0, 0)
        for title, editor in (("Source text", self.source), ("Prompt", self.prompt), ("Completion", self.completion)):
            left.addWidget(QLabel(f"<b>{title}</b>"))
            left.addWidget(editor, 2 if editor is self.source else 1)
        row = QHBoxLayout()
        row.addWidget(QLabel("New tokens"))
        row.addWidget(self.new_tokens)
        row.addStretch(1)
        row.addWidget(self.from_prompt)
        left.addLayout(row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        left.addLayout(buttons)
        left.addWidget(self.status)
        left.addWidget(hint_label("Attention: which earlier tokens each token reads from, per layer and head. "
                                  "Layer by layer: where in the network the answer appears. Probe: compare "
                                  "continuations across a template's values."))
        split = QSplitter()
        split.addWidget(inputs)
        split.addWidget(self.views)
        split.setSizes([300, 900])
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(split, 1)
        layout.addWidget(self.error)

        for editor in (self.source, self.prompt, self.completion):
            editor.textChanged.connect(self.changed)
        self.new_tokens.valueChanged.connect(self.changed)
        self.probe.changed.connect(self.changed)
        self.views.currentChanged.connect(self.changed)

    # -- actions -----------------------------------------------------------------------------------------------
    def request(self) -> InspectRequest:
        return InspectRequest(prompt=self.prompt.toPlainText(), source=self.source.toPlainText(),
                              completion=self.completion.toPlainText(), new_tokens=self.new_tokens.value())

    @Slot()
    def run(self) -> None:
        """Inspect the inputs (Ctrl+Enter)."""
        request = self.request()
        if self.running or not self.valid(request):
            return
        self._start("inspect", f"Inspecting with {self.model_id()}…")
        self._request = request
        self.worker.inspect(self.model_id(), request)

    @Slot()
    def run_probe(self) -> None:
        """Score the probe's continuations (Ctrl+Enter in the Probe view)."""
        request = self.probe.request()
        if self.running or not self.valid(request):
            return
        self.views.setCurrentWidget(self.probe)
        self._start("probe", f"Scoring {len(request.values) * len(request.continuations)} continuations…")
        self._probe_request = request
        self.worker.probe(self.model_id(), request)

    def _start(self, job: str, status: str) -> None:
        self.clear_error()
        self._job, self._stopping = job, False
        self.status.setText(status)
        self.set_running(True)

    @Slot()
    def stop(self) -> None:
        if self.running:
            self._stopping = True
            self.status.setText("stopping…")
            self.worker.stop()

    def copy_from_prompt_tab(self) -> None:
        if self.prompt_inputs is None:
            return
        source, prompt, completion = self.prompt_inputs()
        self.source.setPlainText(source)
        self.prompt.setPlainText(prompt)
        self.completion.setPlainText(completion)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        """Load the model for inspection as soon as the tab is seen: the first Inspect then only computes."""
        super().showEvent(event)
        # Once the events queued now have run: a window restoring its last tab shows it before its model list
        # selects the model, and a preload of the model shown first (the embedded one: fetched on first use)
        # would hold the worker while the inspection of the selected one waited behind it.
        QTimer.singleShot(0, self._preload_current)

    def _preload_current(self) -> None:
        model_id = self.model_id()
        if self.isVisible() and model_id != self._preloaded and not is_remote(model_id) and not self.running:
            self._preloaded = model_id
            self.worker.preload(model_id)

    # -- results -----------------------------------------------------------------------------------------------
    def show_inspection(self, insp: Inspection) -> None:
        """Every view of a new inspection; the selected token is the last one."""
        self.inspection = insp
        self._pending_lens = set()
        self.lens.set_inspection(list(insp.tokens), insp.layers, insp.lens)
        self.attention.set_inspection(insp)

    @Slot(object)
    def _on_inspected(self, insp: Inspection) -> None:
        self.set_running(False)
        self._job = ""
        self.show_inspection(insp)
        self.status.setText(f"{len(insp)} tokens · {insp.layers} layers × {insp.heads} heads · "
                            f"{insp.seconds:.2f} s · {insp.model} (eager attention)")
        if self._request is not None:
            self.run_ended.emit(inspect_run(self._request, insp, insp.model))

    @Slot(object, object)
    def _on_lens_ready(self, insp: Inspection, lens: dict) -> None:
        self._pending_lens -= set(lens)
        if insp is self.inspection:
            self.lens.add_lens(lens)

    @Slot(list)
    def _on_lens_needed(self, positions: list[int]) -> None:
        wanted = [p for p in positions if p not in self._pending_lens]
        if self.inspection is not None and wanted:
            self._pending_lens.update(wanted)
            self.worker.lens(self.inspection, wanted)

    @Slot(int, int, int)
    def _on_selection_changed(self, token: int, _layer: int, _head: int) -> None:
        if self.lens.position != token:
            self.lens.show_position(token)

    @Slot(object, object, float)
    def _on_probed(self, request: ProbeRequest, rows: list[ProbeRow], seconds: float) -> None:
        self.set_running(False)
        self._job = ""
        self.probe.show_rows(rows, request.template)
        stopped = self._stopping and len(rows) < len(request.values) * len(request.continuations)
        self.status.setText(f"Probe{' (stopped)' if stopped else ''}: {len(rows)} scores in {seconds:.2f} s · "
                            f"{self.model_id()}")
        self.run_ended.emit(probe_run(request, rows, self.model_id(), seconds, "cancelled" if stopped else "done"))

    @Slot(str, str, bool)
    def _on_failed(self, job: str, message: str, is_bug: bool) -> None:
        if job in ("lens", "load"):
            self._pending_lens.clear()
            if job == "load" and self.running:
                return  # the job that needed it fails too and says so
            self.show_failure(message, is_bug)
            return
        self.set_running(False)
        self._job = ""
        cancelled = self._stopping and not is_bug
        self.status.setText("stopped" if cancelled else "failed")
        first = "stopped" if cancelled else self.show_failure(message, is_bug)
        status = "cancelled" if cancelled else "failed"
        if job == "inspect" and self._request is not None:
            self.run_ended.emit(inspect_run(self._request, None, self.model_id(), status, first))
        elif job == "probe" and self._probe_request is not None:
            self.run_ended.emit(probe_run(self._probe_request, [], self.model_id(), status=status, error=first))

    @Slot(str)
    def _on_worker_status(self, text: str) -> None:
        if self.running:
            self.status.setText(text)

    # -- sessions ----------------------------------------------------------------------------------------------
    def draft(self) -> dict[str, Any]:
        probe = self.probe.request()
        return {"source": self.source.toPlainText(), "prompt": self.prompt.toPlainText(),
                "completion": self.completion.toPlainText(), "new_tokens": self.new_tokens.value(),
                "probe": {"template": probe.template, "values": list(probe.values),
                          "continuations": list(probe.continuations)},
                "view": self.views.currentIndex(), "layer": self.attention.layer, "head": self.attention.head}

    def restore(self, draft: dict[str, Any], last_run: Run | None) -> None:
        self._set_inputs(request_of(draft))
        probe = draft.get("probe")
        if isinstance(probe, dict):
            self.probe.set_inputs(str(probe.get("template", "")), [str(v) for v in probe.get("values", [])],
                                  [str(c) for c in probe.get("continuations", [])])
        self.attention.layer = int(draft.get("layer", 0) or 0)
        head = draft.get("head")
        self.attention.head = head if isinstance(head, int) else AVERAGE
        self.views.setCurrentIndex(int(draft.get("view", 0) or 0))
        self.clear_error()
        self.inspection = None
        self.attention.set_inspection(None)
        self.lens.set_inspection([], 0, {})
        self.probe.show_rows([])
        if last_run is not None:
            self._show_saved(last_run)

    def show_run(self, run: Run) -> None:
        """Re-open a saved run: a probe's table and chart; an inspection's inputs, recomputed at once (its
        attention weights are not stored)."""
        self.clear_error()
        if run.inputs.get("kind") == "probe":
            self.probe.set_inputs(str(run.inputs.get("template", "")), list(run.inputs.get("values", [])),
                                  list(run.inputs.get("continuations", [])))
            self.views.setCurrentWidget(self.probe)
            self._show_saved(run)
            return
        self._set_inputs(request_of(run.inputs))
        self._show_saved(run)
        if run.status == "done" and not self.running:
            self.run()

    def _set_inputs(self, request: InspectRequest) -> None:
        self.source.setPlainText(request.source)
        self.prompt.setPlainText(request.prompt)
        self.completion.setPlainText(request.completion)
        self.new_tokens.setValue(max(0, min(request.new_tokens, MAX_NEW_TOKENS)))

    def _show_saved(self, run: Run) -> None:
        """What a saved run holds, without recomputing: a probe's rows, or an inspection's tokens and the last
        position's layer-by-layer predictions."""
        if run.error:
            self.show_error(run.error)
        if run.inputs.get("kind") == "probe":
            self.probe.show_rows(rows_of(run), str(run.inputs.get("template", "")))
            self.status.setText(f"saved probe · {run.model_id} · {run.status}")
            return
        tokens = [str(t) for t in run.outputs.get("tokens", [])]
        if not tokens:
            return
        source, prompt = int(run.outputs.get("source_tokens", 0)), int(run.outputs.get("prompt_tokens", 0))
        first_generated = len(tokens) - int(run.outputs.get("generated", 0))
        kinds = ["source" if i < source else "prompt" if i < prompt else
                 "generated" if i >= first_generated else "completion" for i in range(len(tokens))]
        self.inspection = None
        self.attention.set_inspection(None, tokens, kinds)
        last = lens_from_json(run.outputs.get("last_lens", []))
        self.lens.set_inspection(tokens, int(run.outputs.get("layers", 0)), {len(tokens) - 1: last} if last else {},
                                 live=False)
        self.status.setText(f"saved run · {run.model_id} · {len(tokens)} tokens · press Inspect to recompute "
                            "the attention")

    def shutdown(self) -> None:
        self.worker.shutdown()
