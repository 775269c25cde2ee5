"""Branches of a completion: click a token in the output, pick one of its alternatives, and the model continues
from there; every branch is a saved run, shown here as a tree under the run it came from. Click a node to show it
(and branch again from it)."""

from __future__ import annotations

import math
from collections.abc import Callable

from PySide6.QtCore import QPoint, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QLabel,
    QMenu,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from playground.domain.text import TokenEvent
from playground.store.records import Run
from playground.tasks.branching import Fork, branch_of, fork_from, label, node_of, root_of, tree_runs
from ui.common.widgets import hint_label

RunSource = Callable[[], list[Run]]  # the session's Prompt runs, to rebuild a saved tree


class BranchPanel(QWidget):
    node_chosen = Signal(object)  # Run: show this branch
    fork_requested = Signal(object, bool)  # Fork, greedy

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_source: RunSource | None = None
        self.runs: dict[str, Run] = {}  # node id -> run, the tree on show
        self.current: str | None = None
        self.menu: QMenu | None = None
        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.itemClicked.connect(self._on_item_clicked)
        self.greedy = QCheckBox("Continue greedily")
        self.greedy.setChecked(True)
        self.greedy.setToolTip("Branches continue with temperature 0; untick to use the sampling parameters")
        title = QLabel("<b>Branches</b>")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(title)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.greedy)
        layout.addWidget(hint_label("Click a token of the completion to branch: pick an alternative and the model "
                                    "goes on from there."))

    # -- the tree ----------------------------------------------------------------------------------------------
    def set_root(self, run: Run) -> None:
        """A new completion: a tree of its own."""
        self._show([run], node_of(run))

    def add_branch(self, run: Run) -> None:
        """A branch finished: into the tree, selected."""
        self._show([*self.runs.values(), run], node_of(run))

    def show_tree_of(self, run: Run | None) -> None:
        """The tree ``run`` belongs to (from the session's runs when they can be read), ``run`` selected."""
        if run is None:
            self._show([], None)
            return
        runs = tree_runs(self.run_source(), root_of(run)) if self.run_source is not None else []
        if node_of(run) not in {node_of(r) for r in runs}:
            runs.append(run)
        self._show(runs, node_of(run))

    def deselect(self) -> None:
        """The output no longer shows a node (a scored prompt): nothing to branch from until one is chosen."""
        self.current = None
        self.tree.clearSelection()

    def current_run(self) -> Run | None:
        return self.runs.get(self.current) if self.current else None

    def _show(self, runs: list[Run], current: str | None) -> None:
        self.runs = {node_of(r): r for r in runs}
        self.current = current
        self.tree.clear()
        items: dict[str, QTreeWidgetItem] = {}
        for node, run in self.runs.items():
            parent = items.get(str(branch_of(run).get("parent", "")))
            item = QTreeWidgetItem([label(run)])
            item.setData(0, Qt.ItemDataRole.UserRole, node)
            item.setToolTip(0, str((run.outputs.get("completions") or [{}])[0].get("text", "")))
            if parent is not None:
                parent.addChild(item)
            else:
                self.tree.addTopLevelItem(item)
            items[node] = item
        self.tree.expandAll()
        if current in items:
            self.tree.setCurrentItem(items[current])

    @Slot(QTreeWidgetItem, int)
    def _on_item_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        node = item.data(0, Qt.ItemDataRole.UserRole)
        if node in self.runs:
            self.current = node
            self.node_chosen.emit(self.runs[node])

    # -- forking -----------------------------------------------------------------------------------------------
    def offer(self, events: list[TokenEvent], clicked: TokenEvent, at: QPoint | None = None) -> QMenu | None:
        """The menu of ``clicked``'s alternatives (shown at ``at``); choosing one asks for a fork. None when the
        completion on show is not a saved run yet, or the token has no alternatives."""
        run = self.current_run()
        if run is None or not clicked.top:
            return None
        self.menu = QMenu(self)
        header = self.menu.addAction(f"Branch at token {clicked.index} {clicked.text!r} with:")
        header.setEnabled(False)
        for alt in clicked.top:
            if alt.text == clicked.text and alt.token_id == clicked.token_id:
                continue  # the token already there
            action = self.menu.addAction(f"{alt.text!r}   {math.exp(alt.logprob):.1%}")
            fork = fork_from(run, events, clicked, alt)
            action.triggered.connect(lambda _=False, f=fork: self._request(f))
        if at is not None:
            self.menu.popup(at)
        return self.menu

    def _request(self, fork: Fork) -> None:
        self.fork_requested.emit(fork, self.greedy.isChecked())


def beside(output: QWidget, panel: BranchPanel) -> QSplitter:
    """The completion with its branch tree on the right."""
    split = QSplitter()
    split.addWidget(output)
    split.addWidget(panel)
    split.setSizes([640, 240])
    return split
