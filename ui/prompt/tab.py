"""The few-shot Prompt tab: source text + prompt in, a streamed completion with token probabilities out."""

from __future__ import annotations

import dataclasses
import math
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
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from playground.domain.score import ScoreItem, ScoreResult
from playground.domain.text import Constraint, FinishReason, GenerationRequest, GenerationResult, TokenEvent
from playground.errors import ParameterError
from playground.store.records import Run, run_from_result, token_events
from playground.tasks.branching import Fork, with_node
from playground.tasks.constraints import (
    PROMPT_KINDS,
    constraint_from,
    constraint_from_dict,
    prompt_text_of,
)
from playground.tasks.presets import Preset, load_presets
from ui.common import settings
from ui.common.bridge import EngineBridge, GenerationJob
from ui.common.mode_tab import ModeTab
from ui.common.params_panel import PanelSpec, ParamsPanel, run_origin
from ui.common.streaming import REPAINT_MS, FirstAtOnce
from ui.common.token_view import OutputView
from ui.common.widgets import ElidedLabel, hint_label, preset_combo, text_editor
from ui.prompt.branches import BranchPanel, beside

SCORE_TOP = 5
CONSTRAINT_HINTS = {"": "", "json_schema": '{"type": "object", "properties": {"answer": {"type": "string"}}}',
                    "regex": "[0-9]{1,3}", "choice": "yes, no, maybe"}
SHOW_PROBABILITIES = "prompt/show_probabilities"


class PromptTab(ModeTab):
    mode = "prompt"
    params_spec = PanelSpec("Prompt")
    run_finished = Signal(object)  # GenerationResult, after the last token is on screen

    def __init__(self, bridge: EngineBridge, params: ParamsPanel, model_id: Callable[[], str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.params = params
        self.model_id = model_id
        self._pending: list[TokenEvent] = []
        self._completion = 0
        self._request: GenerationRequest | None = None
        self._job: GenerationJob | None = None
        self._fork: Fork | None = None  # the branch being generated, if the run is one
        self._flush_timer = QTimer(self, interval=REPAINT_MS)  # streamed tokens painted in batches
        self._flush_timer.timeout.connect(self._flush)
        self._first = FirstAtOnce()

        self._presets: list[Preset] = load_presets("prompt")
        self.presets = preset_combo([p.name for p in self._presets])
        self.presets.activated.connect(self._on_preset_activated)
        self.preset_note = hint_label()

        self.source = text_editor("Source text: examples the model should continue from (kept when you change the "
                              "prompt)")
        self.prompt = text_editor("Prompt: appended directly after the source text, nothing in between")
        self.output = OutputView()
        self.show_probs = QCheckBox("Show probabilities")
        self.show_probs.setToolTip("Colour each token by its probability; hover a token for the top-5 alternatives")
        self.show_probs.setChecked(settings.read_bool(SHOW_PROBABILITIES))
        self.output.set_show_probabilities(self.show_probs.isChecked())
        self.show_probs.toggled.connect(self.output.set_show_probabilities)
        self.branches = BranchPanel()  # click a token, pick an alternative: a branch continues from it
        self.output.token_clicked.connect(self._on_token_clicked)
        self.output.click_hint = "Click to branch: continue with one of the alternatives"
        self.branches.fork_requested.connect(self._on_fork_requested)
        self.branches.node_chosen.connect(lambda run: self._show_output(run, tree=False))
        self.show_probs.toggled.connect(lambda on: settings.write(SHOW_PROBABILITIES, on))  # kept for next launch
        self.run_button, self.stop_button = self.run_buttons("Run", self.run, self.stop)
        self.run_button.setDefault(True)
        self.score_button = QPushButton("Score prompt")
        self.score_button.setToolTip("How likely the model finds the source text + prompt, token by token (nothing "
                                     "is generated): each token coloured by its probability, the alternatives on "
                                     "hover")
        self.score_button.clicked.connect(self.score)
        self.also_disabled_while_running(self.score_button)
        self.constrain_kind = QComboBox()
        for label, kind in PROMPT_KINDS.items():
            self.constrain_kind.addItem(label, kind)
        self.constrain_kind.setToolTip("Constrain output: only tokens that keep the output matching are allowed at "
                                       "each step (a JSON schema, a regex matched whole, or one of a list)")
        self.constrain_text = QLineEdit()
        self.constrain_text.setEnabled(False)
        self.constrain_kind.currentIndexChanged.connect(self._on_constrain_kind_changed)
        self.constrain_text.textChanged.connect(self.changed)
        self.stats = ElidedLabel(minimum=80)  # model ids as typed: shortened, never widening the window

        top = QHBoxLayout()
        top.addWidget(self.presets)
        top.addWidget(self.preset_note, 1)
        inputs = QSplitter(Qt.Orientation.Vertical)
        inputs.setObjectName("prompt_inputs")  # its sizes are remembered
        inputs.addWidget(self._labelled("Source text", self.source))
        inputs.addWidget(self._labelled("Prompt", self.prompt))
        inputs.addWidget(self._labelled("Completion", beside(self.output, self.branches)))
        inputs.setSizes([260, 90, 260])
        constrain = QHBoxLayout()
        constrain.addWidget(QLabel("Constrain output"))
        constrain.addWidget(self.constrain_kind)
        constrain.addWidget(self.constrain_text, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.score_button)
        buttons.addWidget(self.show_probs)
        buttons.addWidget(self.stats, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(inputs, 1)
        layout.addLayout(constrain)
        layout.addWidget(self.error)
        layout.addLayout(buttons)

        self.source.textChanged.connect(self.changed)
        self.prompt.textChanged.connect(self.changed)

    @staticmethod
    def _labelled(title: str, widget: QWidget) -> QWidget:
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel(f"<b>{title}</b>"))
        lay.addWidget(widget)
        return box

    # -- actions -------------------------------------------------------------------------------------------
    def constraint(self) -> Constraint | None:
        """The "Constrain output" controls as a Constraint (ParameterError when what is typed is malformed)."""
        return constraint_from(self.constrain_kind.currentData(), self.constrain_text.text())

    def request(self) -> GenerationRequest:
        """A frozen snapshot of the editors, parameters and output constraint."""
        return GenerationRequest(source=self.source.toPlainText(), prompt=self.prompt.toPlainText(),
                                 constraint=self.constraint(), **self.params.values())

    @Slot()
    def run(self) -> None:
        if self.running:
            return
        try:
            request = self.request()
        except ParameterError as exc:
            self.show_error(str(exc))
            return
        if not self.valid(request):
            return
        if not request.text:
            self.show_error("Type a source text or a prompt first")
            return
        self._start(request, None)

    def _start(self, request: GenerationRequest, fork: Fork | None) -> None:
        """Generate ``request``; a branch shows its prefix and chosen alternative first."""
        if self.bridge.generating:
            self.show_error("Another run is in progress; wait for it or stop it first")
            return
        self.clear_error()
        self.output.clear_output()
        self.stats.setText("generating…")
        self._completion = 0
        self._request, self._fork = request, fork
        if fork is not None:
            self.output.append_tokens(fork.lead())
        self.set_running(True)
        self._job = self.bridge.generate(self.model_id(), request, self._on_engine_token,
                                         self._on_engine_finished, self._on_engine_failed)

    @Slot(object, object)
    def _on_token_clicked(self, event: TokenEvent, at: object) -> None:
        if not self.running:
            self.branches.offer(self.output.tokens, event, at)

    @Slot(object, bool)
    def _on_fork_requested(self, fork: Fork, greedy: bool) -> None:
        request = fork.request(self.params.values(), greedy)
        if not self.running and self.valid(request):
            self._start(request, fork)

    @Slot()
    def score(self) -> None:
        """Score source + prompt: the prompt's own token probabilities in the output view, coloured."""
        if self.running:
            return
        text = self.source.toPlainText() + self.prompt.toPlainText()
        if not text:
            self.show_error("Type a source text or a prompt to score")
            return
        self.clear_error()
        self.output.clear_output()
        self.branches.deselect()  # the prompt's own tokens are not a completion to branch from
        self.stats.setText("scoring…")
        self._request = None
        self.set_running(True)
        self.bridge.score(self.model_id(), [ScoreItem(text)], SCORE_TOP, self._on_score_finished,
                          self._on_score_failed)

    @Slot(object)
    def _on_score_finished(self, results: list[ScoreResult]) -> None:
        self.set_running(False)
        result = results[0]
        events = [TokenEvent(0, i, t.text, t.token_id, t.logprob, t.top, t.raw) for i, t in enumerate(result.tokens)]
        self.output.append_tokens(events)
        self.show_probs.setChecked(True)
        scored = [t.logprob for t in result.tokens if t.logprob is not None]
        mean = sum(scored) / len(scored) if scored else 0.0
        surprising = min(result.tokens[1:], key=lambda t: t.logprob or 0.0, default=None)
        least = f" · least expected {surprising.text!r}" if surprising is not None else ""
        self.stats.setText(f"prompt scored · {result.prompt_tokens} tokens · mean log-prob {mean:.2f} · "
                           f"perplexity {math.exp(-mean):.1f}{least}")

    @Slot(str, bool)
    def _on_score_failed(self, message: str, is_bug: bool) -> None:
        self.set_running(False)
        self.stats.setText("scoring failed")
        self.show_failure(message, is_bug)

    @Slot(int)
    def _on_constrain_kind_changed(self, index: int) -> None:
        kind = self.constrain_kind.currentData()
        self.constrain_text.setEnabled(bool(kind))
        self.constrain_text.setPlaceholderText(f"e.g. {CONSTRAINT_HINTS[kind]}" if kind else "")
        self.changed.emit()

    @Slot()
    def stop(self) -> None:
        if self.running and self._job is not None:
            self.stats.setText("stopping…")
            self._job.stop()

    def load_preset(self, preset: Preset) -> None:
        self.source.setPlainText(preset.fields.get("source", ""))
        self.prompt.setPlainText(preset.fields.get("prompt", ""))
        self.params.reset()
        self.params.apply(preset.params, origin=f"from the preset “{preset.name}” (the rest: defaults)")
        self.preset_note.setText(preset.description)

    # -- engine events -------------------------------------------------------------------------------------
    @Slot(object)
    def _on_engine_token(self, event: TokenEvent) -> None:
        if self.running:
            self._pending.append(event)
            if self._first.now():
                self._flush()

    @Slot()
    def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        for event in batch:
            if event.completion != self._completion:
                self._completion = event.completion
                self.output.append_plain(f"\n\n── completion {event.completion + 1} ──\n")
            if self._fork is not None:  # after the prefix and the alternative already on show
                event = dataclasses.replace(event, index=event.index + self._fork.at + 1)
            self.output.append_tokens([event])

    @Slot(object)
    def _on_engine_finished(self, result: GenerationResult) -> None:
        if not self.running:
            return
        self._flush()
        self.set_running(False)
        c = result.first
        tokens = sum(len(x.tokens) for x in result.completions)
        self.stats.setText(f"{c.finish_reason} · {tokens} token{'s' * (tokens != 1)} · "
                           f"{c.timings.tokens_per_s:.1f} tok/s · "
                           f"first token {c.timings.ttft_s:.2f} s · seed {result.seed}")
        if self._request is not None:
            status = "cancelled" if c.finish_reason == FinishReason.CANCELLED else "done"
            self._record(run_from_result(self._request, result, status) if self._fork is None
                         else self._fork.record(self._request, result, status))
        self.run_finished.emit(result)

    def _record(self, run: Run) -> None:
        """Save the run (a node of the branch tree: a new root, or a branch of the one on show)."""
        if self._fork is None:
            run = with_node(run)
            self.branches.set_root(run)
        else:
            self.branches.add_branch(run)
        self.run_ended.emit(run)

    @Slot(str, bool)
    def _on_engine_failed(self, message: str, is_bug: bool) -> None:
        if not self.running:
            return
        self._flush()
        self.set_running(False)
        self.stats.setText("failed")
        first = self.show_failure(message, is_bug)
        if self._request is not None:
            self._record(run_from_result(self._request, None, "failed", first, self.model_id()) if self._fork is None
                         else self._fork.record(self._request, None, "failed", first, self.model_id()))

    def _on_running_changed(self, running: bool) -> None:
        if running:
            self._first.start()
            self._flush_timer.start()
        else:
            self._flush_timer.stop()

    # -- sessions --------------------------------------------------------------------------------------------
    def draft(self) -> dict[str, Any]:
        """The editors and parameters, as saved in the session's draft."""
        params = self.params.values()
        params["stop"] = list(params["stop"])
        constraint = {"kind": self.constrain_kind.currentData(), "text": self.constrain_text.text()}
        return {"source": self.source.toPlainText(), "prompt": self.prompt.toPlainText(), "params": params,
                "constraint": constraint}

    def restore(self, draft: dict[str, Any], last_run: Run | None) -> None:
        """Open a session: its draft in the editors, its last run's output below."""
        self.source.setPlainText(str(draft.get("source", "")))
        self.prompt.setPlainText(str(draft.get("prompt", "")))
        if isinstance(draft.get("params"), dict):
            self.params.apply(draft["params"], origin="as last used in this session")
        else:
            self.params.reset()
        self.preset_note.clear()
        saved = draft.get("constraint")
        self._set_constraint(*((str(saved.get("kind") or ""), str(saved.get("text") or ""))
                               if isinstance(saved, dict) else ("", "")))
        self._show_output(last_run)

    def _set_constraint(self, kind: str, text: str) -> None:
        index = self.constrain_kind.findData(kind)
        self.constrain_kind.setCurrentIndex(max(0, index))
        self.constrain_text.setText(text if index > 0 else "")

    def show_run(self, run: Run) -> None:
        """Re-open a past run: its inputs and parameters in the editors (to change the prompt, keep the
        source) and its output with probabilities."""
        self.source.setPlainText(str(run.inputs.get("source", "")))
        self.prompt.setPlainText(str(run.inputs.get("prompt", "")))
        self.params.apply(run.params, origin=run_origin(run))
        self._set_constraint(*prompt_text_of(constraint_from_dict(run.params.get("constraint"))))
        self._show_output(run)

    def _show_output(self, run: Run | None, tree: bool = True) -> None:
        if tree:
            self.branches.show_tree_of(run)
        self.output.clear_output()
        self.clear_error()
        self.stats.clear()
        if run is None:
            return
        self._completion = 0
        for event in token_events(run):
            if event.completion != self._completion:
                self._completion = event.completion
                self.output.append_plain(f"\n\n── completion {event.completion + 1} ──\n")
            self.output.append_tokens([event])
        if run.error:
            self.show_error(run.error)
        self.stats.setText(f"{run.status} · {run.model_id} · saved run")

    @Slot(int)
    def _on_preset_activated(self, index: int) -> None:
        if index > 0:
            self.load_preset(self._presets[index - 1])
        self.presets.setCurrentIndex(0)
