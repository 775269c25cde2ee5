"""The layout variants sub-view: one page description, 2+ variants (model + settings) side by side, each with
its HTML source and a sandboxed preview. Generations go through the Compare tab's text worker."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from playground.errors import ParameterError
from playground.store.records import Run
from playground.tasks.compare import format_column, parse_column
from playground.tasks.compare_run import ColumnOutcome
from playground.tasks.layout_html import build_prompt, clean, load_examples
from playground.tasks.layout_run import layout_settings
from ui.common.html_preview import HtmlPreview
from ui.common.widgets import TextEditor, banner


class LayoutVariant(QWidget):
    def __init__(self, spec: str) -> None:
        super().__init__()
        self.settings = QLineEdit(spec)
        self.settings.setPlaceholderText("model=ID,temperature=0.7,seed=1")
        self.source = TextEditor()
        self.source.setReadOnly(True)
        self.preview = HtmlPreview()
        panes = QSplitter(Qt.Orientation.Vertical)
        panes.addWidget(self.source)
        panes.addWidget(self.preview)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.settings)
        layout.addWidget(panes, 1)
        self.html = ""


class LayoutVariantsView(QWidget):
    run_ended = Signal(object)

    def __init__(self, worker: Any, tab: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker = worker  # the Compare tab's CompareWorker (one device, one queue)
        self.tab = tab
        self._running = False
        self.description = QLineEdit()
        self.description.setPlaceholderText("Describe the page: “a blue button that says Subscribe”")
        self.run_button = QPushButton("Generate variants")
        self.run_button.clicked.connect(self.run_variants)
        add = QPushButton("+ Variant")
        add.clicked.connect(lambda: self.add_variant("temperature=0.8,seed=2"))
        self.error = banner("error")
        bar = QHBoxLayout()
        bar.addWidget(self.description, 1)
        bar.addWidget(self.run_button)
        bar.addWidget(add)
        self._strip = QHBoxLayout()
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.error)
        layout.addLayout(self._strip, 1)
        self.variants: list[LayoutVariant] = []
        for spec in ("temperature=0", "temperature=0.8,seed=1"):
            self.add_variant(spec)

    @property
    def running(self) -> bool:
        return self._running

    def add_variant(self, spec: str) -> None:
        if len(self.variants) >= 4:
            return
        variant = LayoutVariant(spec)
        self.variants.append(variant)
        self._strip.addWidget(variant, 1)

    @Slot()
    def run_variants(self) -> None:
        if self._running or self.tab.running:
            return
        description = self.description.text().strip()
        try:
            specs = [parse_column(v.settings.text()) for v in self.variants]
        except ParameterError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return
        if not description:
            self.error.setText("Describe the page first")
            self.error.show()
            return
        self.error.hide()
        prompt = build_prompt(description, _examples())
        defaults = {**self.tab.defaults(), **layout_settings(prompt)}
        self._specs, self._description = specs, description
        self._running = True
        self.run_button.setEnabled(False)
        self.worker.column_done.connect(self._on_variant_done)
        self.worker.all_done.connect(self._on_all_done)
        self.worker.run(specs, defaults, "", prompt.text)

    @Slot(object)
    def _on_variant_done(self, outcome: ColumnOutcome) -> None:
        if outcome.index >= len(self.variants):
            return
        variant = self.variants[outcome.index]
        if outcome.result is None:
            variant.source.setPlainText(f"failed: {outcome.error}")
            return
        page = clean(outcome.result.first.text)
        variant.html = page.html
        variant.source.setPlainText(page.html)
        variant.preview.show_html(page.html)

    @Slot(bool)
    def _on_all_done(self, cancelled: bool) -> None:
        self.worker.column_done.disconnect(self._on_variant_done)
        self.worker.all_done.disconnect(self._on_all_done)
        self._running = False
        self.run_button.setEnabled(True)
        self.run_ended.emit(Run(mode="compare", model_id="", inputs={
            "kind": "layout", "description": self._description,
            "columns": [format_column(s) for s in self._specs]},
            outputs={"html": [v.html for v in self.variants]}, status="cancelled" if cancelled else "done"))

    def draft(self) -> dict[str, Any]:
        return {"description": self.description.text(), "variants": [v.settings.text() for v in self.variants]}

    def restore(self, d: dict[str, Any]) -> None:
        self.description.setText(str(d.get("description", "")))
        for v, spec in zip(self.variants, d.get("variants") or [], strict=False):
            v.settings.setText(str(spec))

    def show_run(self, run: Run) -> None:
        self.description.setText(str(run.inputs.get("description", "")))
        for v, html in zip(self.variants, run.outputs.get("html", []), strict=False):
            v.html = str(html)
            v.source.setPlainText(v.html)
            v.preview.show_html(v.html)

    def shutdown(self) -> None:
        for v in self.variants:
            v.preview.dispose()


def _examples() -> list:
    try:
        return load_examples()
    except (OSError, ValueError, KeyError):
        return []
