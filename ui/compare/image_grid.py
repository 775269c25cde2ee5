"""The image X/Y grid sub-view: rows and columns over one setting each, filled cell by cell with the live
preview; click a cell to open its settings in the Image tab; export the grid as one labelled PNG."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QMouseEvent, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from playground import paths
from playground.domain.image import ImageRequest, ImageResult, StepEvent
from playground.errors import ParameterError
from playground.models.demo_image import DEMO_IMAGE_ID
from playground.store.records import Run
from playground.tasks.compare_grid import AXES, GridCell, GridPlan, grid_png, make_plan, plan_from_dict
from playground.tasks.image_runs import save_images
from ui.common.flow_layout import flow_row
from ui.common.widgets import ElidedLabel, banner, plain_label
from ui.image.tab import qimage_of
from ui.image.worker import ImageWorker

CELL_SIDE = 160


class GridCellLabel(QLabel):
    clicked = Signal(int, int)

    def __init__(self, row: int, col: int) -> None:
        super().__init__()
        self.row, self.col = row, col
        self.setFixedSize(CELL_SIDE, CELL_SIDE)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setStyleSheet("border: 1px solid #bbb;")
        self.setText("…")
        self.setToolTip("Click to open this cell's settings in the Image tab")

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        self.clicked.emit(self.row, self.col)


class ImageGridView(QWidget):
    open_image_settings = Signal(dict)
    run_ended = Signal(object)

    def __init__(self, loader: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker = ImageWorker(loader, self)
        self.worker.step.connect(self._on_engine_step)
        self.worker.finished.connect(self._on_engine_finished)
        self.worker.failed.connect(self._on_engine_failed)
        self.plan: GridPlan | None = None
        self._queue: list[GridCell] = []
        self._current: GridCell | None = None
        self.images: dict[tuple[int, int], Any] = {}  # (row, col) -> PIL image
        self.files: dict[tuple[int, int], str] = {}  # (row, col) -> its PNG, relative to the data dir
        self.cells: dict[tuple[int, int], GridCellLabel] = {}
        self._stopped = False

        self.model = QLineEdit(DEMO_IMAGE_ID)
        self.prompt = QLineEdit("a red circle on a blue background")
        self.steps = QSpinBox(minimum=1, maximum=200, value=10, prefix="steps ")
        self.x_axis, self.y_axis = QComboBox(), QComboBox()
        self.x_axis.addItems(list(AXES))
        self.y_axis.addItems(list(AXES))
        self.y_axis.setCurrentText("guidance")
        self.x_values = QLineEdit("1, 2, 3")
        self.y_values = QLineEdit("1, 4")
        self.model.setToolTip("The image model of every cell (unless an axis is model)")
        self.prompt.setToolTip("The prompt of every cell")
        self.steps.setToolTip("Denoising steps of every cell (unless an axis is steps)")
        for axis, values, name in ((self.x_axis, self.x_values, "column"), (self.y_axis, self.y_values, "row")):
            axis.setToolTip(f"The setting that changes from {name} to {name}")
            values.setToolTip(f"Its values, comma-separated: one {name} each (at most 8)")
        self.run_button = QPushButton("Run grid")
        self.run_button.clicked.connect(self.run_grid)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        export = QPushButton("Export PNG…")
        export.clicked.connect(self._on_export_clicked)
        self.status = ElidedLabel()
        self.error = banner("error")
        self._grid_host = QWidget()
        self._grid = QGridLayout(self._grid_host)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._grid_host)

        self.model.setMinimumWidth(120)
        self.prompt.setMinimumWidth(200)
        for values in (self.x_values, self.y_values):
            values.setMinimumWidth(90)
        row1 = flow_row(QLabel("Model"), self.model, QLabel("Prompt"), self.prompt, self.steps,
                        stretch=(self.prompt,))  # rows wrap in a narrow window
        row2 = flow_row(QLabel("X"), self.x_axis, self.x_values, QLabel("Y"), self.y_axis, self.y_values,
                        self.run_button, self.stop_button, export)
        layout = QVBoxLayout(self)
        layout.addWidget(row1)
        layout.addWidget(row2)
        layout.addWidget(self.error)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.status)

    @property
    def running(self) -> bool:
        return self._current is not None

    @Slot()
    def run_grid(self) -> None:
        if self.running:
            return
        base = ImageRequest(self.prompt.text().strip(), steps=self.steps.value(), seed=0)
        try:
            self.plan = make_plan(base, self.model.text().strip() or DEMO_IMAGE_ID, self.x_axis.currentText(),
                                  self.x_values.text(), self.y_axis.currentText(), self.y_values.text())
        except ParameterError as exc:
            self.error.setText(str(exc)[:1].upper() + str(exc)[1:])
            self.error.show()
            return
        self.error.hide()
        self._build_cells()
        self._queue = self.plan.cells()
        self._stopped = False
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self._next()

    def _build_cells(self) -> None:
        while self._grid.count():
            item = self._grid.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.images.clear()
        self.files.clear()
        self.cells.clear()
        assert self.plan is not None
        cols, rows = self.plan.labels()
        for c, text in enumerate(cols):
            label = plain_label(text)  # values as typed
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self._grid.addWidget(label, 0, c + 1)
        for r, text in enumerate(rows):
            self._grid.addWidget(plain_label(text), r + 1, 0)
            for c in range(len(cols)):
                cell = GridCellLabel(r, c)
                cell.clicked.connect(self._on_cell_clicked)
                self.cells[(r, c)] = cell
                self._grid.addWidget(cell, r + 1, c + 1)

    def _next(self) -> None:
        if not self._queue or self._stopped:
            self._finish()
            return
        self._current = self._queue.pop(0)
        self.status.setText(f"cell {len(self.images) + 1} of {len(self.cells)}")
        self.worker.generate(self._current.model, self._current.request)

    @Slot()
    def stop(self) -> None:
        self._stopped = True
        self.worker.stop()

    @Slot(object)
    def _on_engine_step(self, event: StepEvent) -> None:
        if self._current is not None and event.preview is not None:
            self._set_cell((self._current.row, self._current.col), QPixmap.fromImage(qimage_of(event.preview)))

    @Slot(object)
    def _on_engine_finished(self, result: ImageResult) -> None:
        cell, self._current = self._current, None
        if cell is not None and result.images:
            self.images[(cell.row, cell.col)] = result.images[0]
            # Kept as a PNG like the Image tab's, so a re-opened session shows the grid again.
            self.files[(cell.row, cell.col)] = save_images(result, paths.data_dir())[0]["path"]
            self._set_cell((cell.row, cell.col), QPixmap.fromImage(qimage_of(_rgb(result.images[0]))))
        self._next()

    @Slot(str, bool)
    def _on_engine_failed(self, message: str, is_bug: bool) -> None:
        cell, self._current = self._current, None
        if cell is not None:
            self.cells[(cell.row, cell.col)].setText("failed")
        self.error.setText(message.splitlines()[0])
        self.error.show()
        self._next()

    def _set_cell(self, key: tuple[int, int], pixmap: QPixmap) -> None:
        self.cells[key].setPixmap(pixmap.scaled(CELL_SIDE, CELL_SIDE, Qt.AspectRatioMode.KeepAspectRatio))

    def _finish(self) -> None:
        self._current = None
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        done = len(self.images)
        self.status.setText(f"{done} of {len(self.cells)} cells" + (" · stopped" if self._stopped else ""))
        if self.plan is not None:
            self.run_ended.emit(Run(mode="compare", model_id=self.plan.model, inputs={
                "kind": "image", "prompt": self.plan.base.prompt, "grid": self.plan.to_dict()},
                outputs={"cells": [{"row": r, "col": c, "path": self.files[(r, c)]}
                                   for r, c in sorted(self.files)]},
                status="cancelled" if self._stopped else "done"))

    @Slot(int, int)
    def _on_cell_clicked(self, row: int, col: int) -> None:
        if self.plan is not None:
            cell = next(c for c in self.plan.cells() if (c.row, c.col) == (row, col))
            file = self.files.get((row, col))  # its image, for the Image tab's preview
            self.open_image_settings.emit({**cell.settings(), **({"file": file} if file else {})})

    def grid_image(self) -> Any:
        """The labelled grid as one PIL image (empty cells outlined)."""
        assert self.plan is not None
        rows, cols = self.plan.shape
        images = [[self.images.get((r, c)) for c in range(cols)] for r in range(rows)]
        col_labels, row_labels = self.plan.labels()
        return grid_png(images, col_labels, row_labels, title=self.plan.base.prompt)

    def export_png(self, path: str) -> None:
        self.grid_image().save(path)

    def _on_export_clicked(self) -> None:
        if self.plan is None or not self.images:
            self.error.setText("Run the grid first")
            self.error.show()
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export grid", "grid.png", "PNG (*.png)")
        if path:
            self.export_png(path)

    def draft(self) -> dict[str, Any]:
        return {"model": self.model.text(), "prompt": self.prompt.text(), "steps": self.steps.value(),
                "x_axis": self.x_axis.currentText(), "x_values": self.x_values.text(),
                "y_axis": self.y_axis.currentText(), "y_values": self.y_values.text()}

    def restore(self, d: dict[str, Any]) -> None:
        for key, box in (("model", self.model), ("prompt", self.prompt), ("x_values", self.x_values),
                         ("y_values", self.y_values)):
            if isinstance(d.get(key), str):
                box.setText(d[key])
        for key, combo in (("x_axis", self.x_axis), ("y_axis", self.y_axis)):
            if d.get(key) in AXES:
                combo.setCurrentText(d[key])
        if isinstance(d.get("steps"), int):
            self.steps.setValue(d["steps"])

    def show_run(self, run: Run) -> None:
        """A saved grid: its settings in the controls and its images in the cells (from their PNG files)."""
        from PIL import Image

        grid = run.inputs.get("grid") or {}
        self.restore({**grid, "prompt": grid.get("base", {}).get("prompt", ""),
                      "x_values": ", ".join(map(str, grid.get("x_values", []))),
                      "y_values": ", ".join(map(str, grid.get("y_values", [])))})
        if self.running:
            return
        self.plan = plan_from_dict(grid)
        self._build_cells()
        missing = 0
        for cell in run.outputs.get("cells") or []:
            if not (isinstance(cell, dict) and (cell.get("row"), cell.get("col")) in self.cells and cell.get("path")):
                continue  # an older run kept no files
            key, file = (cell["row"], cell["col"]), paths.data_dir() / str(cell["path"])
            try:
                with Image.open(file) as image:
                    self.images[key] = image.convert("RGB")
            except OSError:
                missing += 1
                continue
            self.files[key] = str(cell["path"])
            self._set_cell(key, QPixmap.fromImage(qimage_of(_rgb(self.images[key]))))
        for key, label in self.cells.items():
            if key not in self.images:
                label.setText("not run")
        self.status.setText(f"{len(self.images)} of {len(self.cells)} cells · {run.status}"
                            + (f" · {missing} image files missing" if missing else ""))

    def shutdown(self) -> None:
        self._stopped = True
        self.worker.shutdown()


def _rgb(image: Any) -> Any:
    import numpy as np

    return np.asarray(image.convert("RGB"))
