"""The Layout → HTML tab: describe a page, watch the HTML stream in and render beside its source, iterate."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from playground import paths
from playground.domain.text import FinishReason, GenerationRequest, GenerationResult, TokenEvent
from playground.store.records import Run
from playground.tasks.layout_html import Example, Versions, build_prompt, clean, load_examples
from playground.tasks.layout_run import MAX_NEW_TOKENS, TEMPERATURE, layout_request, layout_run
from ui.common.bridge import EngineBridge, GenerationJob
from ui.common.flow_layout import flow_row
from ui.common.html_highlighter import HtmlHighlighter
from ui.common.html_preview import HtmlPreview
from ui.common.mode_tab import ModeTab
from ui.common.params_panel import PanelSpec, ParamsPanel, run_origin
from ui.common.widgets import StatusLabel, TextEditor, plain_label, preset_combo
from ui.layout.examples import ExamplesEditor

RENDER_MS = 400  # re-render the partial page at most this often while streaming


def _presets() -> list[dict[str, str]]:
    try:
        data = json.loads((paths.assets_dir() / "layout" / "examples.json").read_text(encoding="utf-8"))
        return [p for p in data.get("presets", []) if isinstance(p, dict) and "description" in p]
    except (OSError, ValueError):
        return []


LAYOUT_PARAMS = PanelSpec(
    "Layout", fields=("max_new_tokens", "temperature", "top_p", "top_k", "seed"),
    defaults={"max_new_tokens": MAX_NEW_TOKENS, "temperature": TEMPERATURE}, limits={"max_new_tokens": (16, 4096)},
    intro="Greedy by default (temperature 0): sampled HTML from a small model breaks quickly. A 10-token "
          "sequence never repeats (small models loop on CSS).")


class LayoutTab(ModeTab):
    mode = "layout"
    params_spec = LAYOUT_PARAMS
    page_ready = Signal(str)  # the cleaned HTML of a finished generation

    def __init__(self, bridge: EngineBridge, params: ParamsPanel, model_id: Callable[[], str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.params = params
        self.model_id = model_id
        self.versions = Versions()
        self._job: GenerationJob | None = None
        self._raw = ""
        self._request_info: dict[str, Any] = {}
        self._request: GenerationRequest | None = None
        self._render_timer = QTimer(self, interval=RENDER_MS)
        self._render_timer.timeout.connect(self._render_partial)
        self._last_rendered = ""

        self._presets = _presets()
        self.presets = preset_combo([p.get("name", p["description"][:40]) for p in self._presets])
        self.presets.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.presets.setMinimumContentsLength(12)
        self.presets.activated.connect(self._on_preset_activated)
        self.description = TextEditor()
        self.description.setPlaceholderText("Describe the page: “a blue button that says Subscribe under a large "
                                            "heading Welcome”")
        self.description.setTabChangesFocus(True)
        self.instruction = QLineEdit()
        self.instruction.setPlaceholderText("Then change it: “make the button red” (Enter)")
        self.instruction.returnPressed.connect(self.apply_change)
        self.examples = ExamplesEditor()
        self.examples.set_examples(_safe_examples())
        self.generate_button, self.stop_button = self.run_buttons("Generate", self.generate, self.stop)
        self.change_button = QPushButton("Apply change")
        self.change_button.clicked.connect(lambda _checked=False: self.apply_change())
        self.also_disabled_while_running(self.change_button)

        self.source = TextEditor()
        self.source.setReadOnly(True)
        self.source.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self._highlighter = HtmlHighlighter(self.source.document())
        self.preview = HtmlPreview()
        self.javascript = QCheckBox("JavaScript")
        self.javascript.setToolTip("Off by default. Even on, the page has no network, disk or storage access")
        self.javascript.toggled.connect(self._on_javascript_toggled)
        self.back_button = QToolButton(text="◀")
        self.back_button.setToolTip("Previous version (Alt+Left)")
        self.back_button.clicked.connect(self.undo)
        self.forward_button = QToolButton(text="▶")
        self.forward_button.setToolTip("Next version (Alt+Right)")
        self.forward_button.clicked.connect(self.redo)
        self.version_label = plain_label("no page yet")
        self.validity = StatusLabel()  # plain: it quotes tag names, "unclosed <div>"
        export = QToolButton(text="Export…")
        export.setToolTip("Save the page as a .html file")
        export.clicked.connect(self._on_export_clicked)
        copy = QToolButton(text="Copy")
        copy.setToolTip("Copy the HTML source")
        copy.clicked.connect(self.copy_source)
        shot = QToolButton(text="PNG…")
        shot.setToolTip("Save a screenshot of the preview")
        shot.clicked.connect(self._on_screenshot_clicked)
        self.stats = plain_label()

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.presets)
        inputs = QTabWidget()
        describe = QWidget()
        dv = QVBoxLayout(describe)
        dv.addWidget(self.description, 1)
        dv.addWidget(QLabel("<b>Iterate</b>"))
        dv.addWidget(self.instruction)
        inputs.addTab(describe, "Description")
        inputs.addTab(self.examples, "Examples (few-shot)")
        lv.addWidget(inputs, 1)
        buttons = QGridLayout()
        buttons.addWidget(self.generate_button, 0, 0, 1, 2)
        buttons.addWidget(self.change_button, 1, 0)
        buttons.addWidget(self.stop_button, 1, 1)
        lv.addLayout(buttons)
        lv.addWidget(self.error)

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(flow_row(self.back_button, self.version_label, self.forward_button, self.javascript, export,
                              copy, shot))
        panes = QSplitter(Qt.Orientation.Horizontal)
        panes.setObjectName("layout_panes")  # its sizes are remembered
        panes.addWidget(self.source)
        panes.addWidget(self.preview)
        panes.setSizes([400, 500])
        rv.addWidget(panes, 1)
        status = QHBoxLayout()
        status.addWidget(self.validity, 1)
        status.addWidget(self.stats)
        rv.addLayout(status)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.setObjectName("layout_split")
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([300, 900])
        left.setMinimumWidth(180)
        layout = QVBoxLayout(self)
        layout.addWidget(split)

        QShortcut(QKeySequence("Alt+Left"), self, self.undo, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        QShortcut(QKeySequence("Alt+Right"), self, self.redo, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.description.textChanged.connect(self.changed)
        self.instruction.textChanged.connect(self.changed)
        self.examples.changed.connect(self.changed)
        self._update_versions()

    # -- generating --------------------------------------------------------------------------------------------
    @Slot()
    def generate(self) -> None:
        """A new page from the description."""
        description = self.description.toPlainText().strip()
        if not description:
            self.show_error("Describe the page first")
            return
        self._start(description, None, None)

    @Slot()
    def apply_change(self) -> None:
        """Edit the current page with the follow-up instruction instead of starting over."""
        instruction = self.instruction.text().strip()
        if not instruction:
            self.show_error("Type a change to make, e.g. “make the button red”")
            return
        if self.versions.current is None:
            self.show_error("Generate a page first, then change it")
            return
        self._start(self.description.toPlainText().strip(), self.versions.current, instruction)

    def _start(self, description: str, base_html: str | None, instruction: str | None) -> None:
        if self.running:
            return
        if self.bridge.generating:
            self.show_error("Another run is in progress; wait for it or stop it first")
            return
        prompt = build_prompt(description, self.examples.examples(), base_html, instruction)
        values = self.params.values()  # this tab's own panel: only what a layout run uses
        self._request = layout_request(prompt, **{k: values.get(k) for k in LAYOUT_PARAMS.fields})
        self._request_info = {"description": description, "instruction": instruction or "",
                              "base_html": base_html or "", "examples": len(self.examples.examples())}
        self.clear_error()
        self._raw = ""
        self._last_rendered = ""
        self.source.clear()
        self.validity.set_status("generating…")
        self.set_running(True)
        self._job = self.bridge.generate(self.model_id(), self._request, self._on_engine_token,
                                         self._on_engine_finished, self._on_engine_failed)

    @Slot()
    def stop(self) -> None:
        if self._job is not None:
            self._job.stop()

    @Slot(object)
    def _on_engine_token(self, event: TokenEvent) -> None:
        if self.running:
            self._raw += event.text

    @Slot()
    def _render_partial(self) -> None:
        if self._raw == self.source.toPlainText():
            return
        self.source.setPlainText(self._raw)
        partial = clean(self._raw).html
        if partial and partial != self._last_rendered:
            self._last_rendered = partial
            self.preview.show_html(partial)

    @Slot(object)
    def _on_engine_finished(self, result: GenerationResult) -> None:
        self.set_running(False)
        completion = result.first
        page = clean(self._raw)
        cancelled = completion.finish_reason == FinishReason.CANCELLED
        if page.html:
            self.versions.add(page.html)
            self._show_current()
        else:
            self.source.setPlainText(self._raw)
        self._show_validity(page.valid, page.problems, cancelled)
        self.stats.setText(f"{len(completion.tokens)} tokens · {completion.timings.tokens_per_s:.1f} tok/s"
                           + (" · chat template" if result.chat else " · few-shot text"))
        assert self._request is not None
        self.run_ended.emit(layout_run(self._request, self._request_info, result, result.model, self._raw, cancelled))
        if page.html:
            self.page_ready.emit(page.html)

    @Slot(str, bool)
    def _on_engine_failed(self, message: str, is_bug: bool) -> None:
        self.set_running(False)
        first = self.show_failure(message, is_bug)
        self.validity.clear()
        if self._request is not None:
            self.run_ended.emit(layout_run(self._request, self._request_info, None, self.model_id(), error=first))

    def _on_running_changed(self, running: bool) -> None:
        if not running:
            self._job = None
            self._render_timer.stop()
        else:
            self._render_timer.start()

    # -- versions and output -----------------------------------------------------------------------------------
    @Slot()
    def undo(self) -> None:
        if not self.running and self.versions.undo() is not None:
            self._show_current()
            self.changed.emit()

    @Slot()
    def redo(self) -> None:
        if not self.running and self.versions.redo() is not None:
            self._show_current()
            self.changed.emit()

    def _show_current(self) -> None:
        html = self.versions.current or ""
        self.source.setPlainText(html)
        self._last_rendered = html
        self.preview.show_html(html)
        self._update_versions()

    def _update_versions(self) -> None:
        n, i = len(self.versions.items), self.versions.index
        self.version_label.setText(f"version {i + 1} of {n}" if n else "no page yet")
        self.version_label.setToolTip("Every version is kept; Alt+Left / Alt+Right move between them")
        self.back_button.setEnabled(i > 0)
        self.forward_button.setEnabled(0 <= i < n - 1)

    def _show_validity(self, valid: bool, problems: tuple[str, ...], cancelled: bool) -> None:
        if valid:
            text, kind = "✔ valid HTML", "ok"
        else:
            text, kind = "⚠ not valid HTML as written, repaired: " + "; ".join(problems), "warn"
        if cancelled:
            text = "stopped · " + text
        self.validity.set_status(text, kind)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # the theme changed
            self._highlighter.rehighlight()

    @Slot(bool)
    def _on_javascript_toggled(self, on: bool) -> None:
        self.preview.set_javascript(on)
        if self.versions.current:
            self.preview.show_html(self.versions.current)

    def copy_source(self) -> None:
        QGuiApplication.clipboard().setText(self.versions.current or "")

    def export_html(self, path: str | Path) -> None:
        Path(path).write_text(self.versions.current or "", encoding="utf-8")

    def save_screenshot(self, path: str | Path) -> bool:
        return self.preview.grab_image().save(str(path))

    def _on_export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export page", "page.html", "HTML (*.html)")
        if path:
            self.export_html(path)

    def _on_screenshot_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save preview", "page.png", "PNG (*.png)")
        if path and not self.save_screenshot(path):
            self.show_error(f"Could not write {path}")

    @Slot(int)
    def _on_preset_activated(self, index: int) -> None:
        if index > 0:
            self.description.setPlainText(self._presets[index - 1]["description"])
        self.presets.setCurrentIndex(0)

    # -- sessions ----------------------------------------------------------------------------------------------
    def draft(self) -> dict[str, Any]:
        return {"description": self.description.toPlainText(), "instruction": self.instruction.text(),
                "examples": [{"description": e.description, "html": e.html} for e in self.examples.examples()],
                "versions": self.versions.to_dict(), "javascript": self.javascript.isChecked(),
                "params": _jsonable(self.params.values())}

    def restore(self, draft: dict[str, Any], last_run: Run | None) -> None:
        self.description.setPlainText(str(draft.get("description", "")))
        self.instruction.setText(str(draft.get("instruction", "")))
        examples = draft.get("examples")
        if isinstance(examples, list) and examples:
            self.examples.set_examples([Example(str(e.get("description", "")), str(e.get("html", "")))
                                        for e in examples if isinstance(e, dict)])
        else:
            self.examples.set_examples(_safe_examples())
        self.versions = Versions.from_dict(draft.get("versions"))
        if not self.versions.items and last_run is not None and last_run.outputs.get("html"):
            self.versions.add(str(last_run.outputs["html"]))
        if isinstance(draft.get("params"), dict):
            self.params.apply(draft["params"], origin="as last used in this session")
        elif isinstance(draft.get("max_tokens"), int):  # a draft from before the tab had its own panel
            self.params.reset()
            self.params.apply({"max_new_tokens": draft["max_tokens"]}, origin="as last used in this session")
        else:
            self.params.reset()
        self.javascript.setChecked(bool(draft.get("javascript", False)))
        self.clear_error()
        self.validity.clear()
        if self.versions.current is not None:
            self._show_current()
        else:
            self.source.clear()
            self.preview.show_html("")
            self._update_versions()

    def show_run(self, run: Run) -> None:
        """Re-open a past run: its description in the editor, its page as the newest version."""
        self.description.setPlainText(str(run.inputs.get("description", "")))
        self.instruction.setText(str(run.inputs.get("instruction", "")))
        self.params.apply(run.params, origin=run_origin(run))
        if run.outputs.get("html"):
            self.versions.add(str(run.outputs["html"]))
            self._show_current()
        if run.error:
            self.show_error(run.error)

    def shutdown(self) -> None:
        self.stop()
        self._render_timer.stop()
        self.preview.dispose()


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _safe_examples() -> list[Example]:
    try:
        return load_examples()
    except (OSError, ValueError, KeyError):
        return []
