"""The Text-to-image tab: prompt + settings, Generate / Stop, a live denoising preview, a gallery of results.

Runs on its own worker thread (ui/image/worker.py). Finished images are written as PNGs carrying their settings
(A1111 "parameters") under the data dir's images/, and each run is reported on ``run_ended`` like the other tabs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from playground import paths
from playground.domain.image import MAX_BATCH, MAX_SIDE, ImageRequest, ImageResult, StepEvent
from playground.engine.image_schedulers import SCHEDULERS
from playground.models.demo_image import DEMO_IMAGE_ID
from playground.store.records import Run
from playground.tasks.image_runs import failed_image_run, image_run, save_images
from ui.common.mode_tab import ModeTab
from ui.common.widgets import TextEditor, plain_label
from ui.image import session
from ui.image.gallery import ImageGallery
from ui.image.worker import ImageWorker

PREVIEW_SIDE = 384
DEMO_NOTE = ("<b>Demo model</b> (trained in code, 64×64): it knows circles, squares and triangles in 8 colours, "
             "e.g. “a blue square on a yellow background”. Load a Stable Diffusion folder, .safetensors file or "
             "Hugging Face id for real images.")

if TYPE_CHECKING:
    import numpy as np


def caption_of(s: dict[str, Any]) -> str:
    """The line under the preview: prompt, negative prompt, and the settings that made the image."""
    negative = f" — not: {s['negative_prompt']}" if s.get("negative_prompt") else ""
    return (f"{s.get('prompt', '')}{negative} — seed {s.get('seed', '?')}, {s.get('steps', '?')} steps, "
            f"CFG {s.get('guidance', '?')}, {s.get('scheduler', '')}, {s.get('model', '')}")


def qimage_of(rgb: np.ndarray) -> QImage:
    import numpy as np  # not at import time: the window shows before numpy loads

    """A QImage copy of a uint8 (h, w, 3) array."""
    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class ImageTab(ModeTab):
    mode = "image"
    images_ready = Signal(list)  # the gallery entries of a finished run

    def __init__(self, params: Any = None, parent: QWidget | None = None, worker: ImageWorker | None = None) -> None:
        super().__init__(parent)
        self.params = params  # the shared text ParamsPanel: unused, image settings live in this tab
        self.worker = worker or ImageWorker()
        self.worker.setParent(self)
        self.worker.step.connect(self._on_engine_step)
        self.worker.finished.connect(self._on_engine_finished)
        self.worker.failed.connect(self._on_engine_failed)
        self.worker.status.connect(self._on_engine_status)
        self.worker.loaded.connect(self._on_engine_loaded)
        self._request: ImageRequest | None = None
        self._model_id = DEMO_IMAGE_ID
        self.setAcceptDrops(True)

        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.addItem(DEMO_IMAGE_ID)
        self.model.setToolTip("demo-shapes, a diffusers folder, a .safetensors checkpoint, a Hugging Face id, or "
                              "remote:ENDPOINT/MODEL on a server that offers /v1/images/generations")
        self.model.currentTextChanged.connect(self._on_model_text_changed)
        self.demo_note = QLabel(DEMO_NOTE)
        self.demo_note.setWordWrap(True)
        policy = self.demo_note.sizePolicy()  # hidden, it keeps its space: the form below never jumps
        policy.setRetainSizeWhenHidden(True)
        self.demo_note.setSizePolicy(policy)
        self.demo_note.setStyleSheet("background: #fff4ce; color: #5c4400; padding: 6px; border-radius: 4px;")
        self.prompt = TextEditor()
        self.prompt.setPlaceholderText("a blue square on a yellow background")
        self.prompt.setTabChangesFocus(True)
        self.prompt.setMaximumHeight(90)
        self.negative = QLineEdit()
        self.negative.setPlaceholderText("negative prompt (what to avoid)")
        self.steps = QSpinBox()
        self.steps.setRange(0, 500)
        self.steps.setSpecialValueText("model default")
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(-0.5, 50.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setValue(-0.5)
        self.guidance.setSpecialValueText("model default")
        self.seed = QSpinBox()
        self.seed.setRange(-1, 2**31 - 1)
        self.seed.setValue(-1)
        self.seed.setSpecialValueText("random")
        self.width_box = QSpinBox()
        self.height_box = QSpinBox()
        for box in (self.width_box, self.height_box):
            box.setRange(0, MAX_SIDE)
            box.setSingleStep(8)
            box.setSpecialValueText("model default")
        self.batch = QSpinBox()
        self.batch.setRange(1, MAX_BATCH)
        self.scheduler = QComboBox()
        self.scheduler.addItems(["default", *SCHEDULERS])
        for widget, tip in (
                (self.negative, "What the image should not show (classifier-free guidance steers away from it)"),
                (self.steps, "Denoising steps: more is slower and usually cleaner; turbo models need 1–4 "
                             "(model default: what the model was made for)"),
                (self.guidance, "Classifier-free guidance (CFG): how strongly the image follows the prompt; high "
                                "values over-saturate, turbo models use 0"),
                (self.seed, "The starting noise: the same seed and settings give the same image (random = new "
                            "each time; a batch uses seed, seed+1, …)"),
                (self.width_box, "Image width in pixels, a multiple of 8 (model default: its native size)"),
                (self.height_box, "Image height in pixels, a multiple of 8 (model default: its native size)"),
                (self.batch, "Images per run, from consecutive seeds"),
                (self.scheduler, "The sampler that removes the noise step by step; default is the model's own")):
            widget.setToolTip(tip)
        self.generate_button, self.stop_button = self.run_buttons("Generate", self.generate, self.stop)
        self.also_disabled_while_running(self.model)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self._default_steps: int | None = None  # the loaded model's own, when the steps box says "model default"
        self.steps.valueChanged.connect(self._idle_progress)
        self._idle_progress()
        self.status = plain_label(wrap=True)
        self.preview = QLabel("Generated images appear here.\nDrop a PNG to load its settings.")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(256, 256)
        self.preview.setStyleSheet("background: #202020; color: #aaaaaa;")
        self.caption = plain_label(wrap=True, selectable=True)  # the prompt as typed
        self.gallery = ImageGallery()
        self.gallery.restore_requested.connect(self._on_gallery_restore)
        self.gallery.selected.connect(self._on_gallery_selected)
        self.gallery.changed.connect(self.changed)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(QLabel("<b>Model</b>"))
        lv.addWidget(self.model)
        lv.addWidget(self.demo_note)
        lv.addWidget(QLabel("<b>Prompt</b>"))
        lv.addWidget(self.prompt)
        lv.addWidget(self.negative)
        form = QFormLayout()
        form.addRow("Steps", self.steps)
        form.addRow("Guidance (CFG)", self.guidance)
        form.addRow("Seed", self.seed)
        form.addRow("Width", self.width_box)
        form.addRow("Height", self.height_box)
        form.addRow("Batch", self.batch)
        form.addRow("Scheduler", self.scheduler)
        lv.addLayout(form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.stop_button)
        lv.addLayout(buttons)
        lv.addWidget(self.progress)
        lv.addWidget(self.status)
        lv.addWidget(self.error)
        lv.addStretch(1)

        right = QSplitter(Qt.Orientation.Vertical)
        right.setObjectName("image_right")  # its sizes are remembered
        top = QWidget()
        tv = QVBoxLayout(top)
        tv.setContentsMargins(0, 0, 0, 0)
        tv.addWidget(self.preview, 1)
        tv.addWidget(self.caption)
        right.addWidget(top)
        right.addWidget(self.gallery)
        right.setSizes([450, 220])
        split = QSplitter(Qt.Orientation.Horizontal)
        split.setObjectName("image_split")
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([330, 700])
        QVBoxLayout(self).addWidget(split)

        self.prompt.textChanged.connect(self.changed)
        self.negative.textChanged.connect(self.changed)

    # -- generating --------------------------------------------------------------------------------------------
    def request(self) -> ImageRequest:
        """The settings as a frozen request (taken on the GUI thread; the worker never reads widgets)."""
        return ImageRequest(
            prompt=self.prompt.toPlainText().strip(), negative_prompt=self.negative.text().strip(),
            steps=self.steps.value() or None, guidance=None if self.guidance.value() < 0 else self.guidance.value(),
            seed=None if self.seed.value() < 0 else self.seed.value(), width=self.width_box.value() or None,
            height=self.height_box.value() or None, batch=self.batch.value(), scheduler=self.scheduler.currentText())

    @Slot()
    def generate(self) -> None:
        if self.running:
            return
        request = self.request()
        if not self.valid(request):
            return
        self._request = request
        self._model_id = self.model.currentText().strip() or DEMO_IMAGE_ID
        self.clear_error()
        self.progress.setRange(0, request.steps or self._default_steps or 0)  # 0..0: busy until the first step
        self.progress.setFormat("%v / %m steps")
        self.progress.setValue(0)
        self.status.setText("starting…")
        self.set_running(True)
        self.worker.generate(self._model_id, request)

    @Slot()
    def stop(self) -> None:
        if self.running:
            self.worker.stop()
            self.status.setText("stopping…")

    @Slot(object)
    def _on_engine_step(self, event: StepEvent) -> None:
        if not self.running:
            return
        self.progress.setRange(0, event.total)
        self.progress.setFormat("%v / %m steps")
        self.progress.setValue(event.step)
        if event.preview is not None:
            self._show_image(qimage_of(event.preview), smooth=False)
        self.status.setText(f"step {event.step} of {event.total} · {event.elapsed_s:.1f} s")

    @Slot(object)
    def _on_engine_finished(self, result: ImageResult) -> None:
        self.set_running(False)
        request = self._request
        assert request is not None
        entries = []
        if not result.cancelled:
            entries = save_images(result, paths.data_dir())
            for entry in reversed(entries):  # newest first, the batch in seed order, the first one selected
                self.gallery.add(entry)
            if entries:
                self._show_entry(entries[0])
            per = result.timings.get("s_per_step", 0.0)
            self.status.setText(f"{len(entries)} image(s) · seed {result.seed} · {per:.3f} s/step on {result.device}")
        else:
            self.status.setText("stopped: nothing saved")
        self.run_ended.emit(image_run(request, result, entries))
        if entries:
            self.images_ready.emit(entries)
            self.changed.emit()

    @Slot(str, bool)
    def _on_engine_failed(self, message: str, is_bug: bool) -> None:
        was_running = self.running
        self.set_running(False)
        first = self.show_failure(message, is_bug)
        self.status.clear()
        if was_running and self._request is not None:
            self.run_ended.emit(failed_image_run(self._request, self._model_id, first))

    @Slot(str)
    def _on_engine_status(self, text: str) -> None:
        if self.running:
            self.status.setText(text)

    @Slot(object)
    def _on_engine_loaded(self, model: Any) -> None:
        self.demo_note.setVisible(bool(getattr(model, "demo", False)))
        d = getattr(model, "defaults", {})
        self.steps.setSpecialValueText(f"model default ({d.get('steps', '?')})")
        self._default_steps = d.get("steps") if isinstance(d.get("steps"), int) else None
        self._idle_progress()
        self.guidance.setSpecialValueText(f"model default ({d.get('guidance', '?')})")
        for box, key in ((self.width_box, "width"), (self.height_box, "height")):
            box.setSpecialValueText(f"model default ({d.get(key, '?')})")

    def set_remote_models(self, model_ids: list[str]) -> None:
        """Offer these remote image models in the picker (after the local ones; the current text stays)."""
        current = self.model.currentText()
        self.model.blockSignals(True)
        for i in range(self.model.count() - 1, -1, -1):
            if self.model.itemText(i).startswith("remote:"):
                self.model.removeItem(i)
        for model_id in model_ids:
            self.model.addItem(model_id)
        self.model.setCurrentText(current)
        self.model.blockSignals(False)

    @Slot(str)
    def _on_model_text_changed(self, text: str) -> None:
        self.demo_note.setVisible(text.strip() == DEMO_IMAGE_ID)
        self.changed.emit()

    # -- showing and restoring ---------------------------------------------------------------------------------
    def _show_image(self, image: QImage, smooth: bool = True) -> None:
        mode = Qt.TransformationMode.SmoothTransformation if smooth else Qt.TransformationMode.FastTransformation
        side = min(PREVIEW_SIDE, max(self.preview.width(), 64), max(self.preview.height(), 64))
        if image.width() <= 128:  # the demo's 64×64 images: blow up with visible pixels, not blur
            mode = Qt.TransformationMode.FastTransformation
        self.preview.setPixmap(QPixmap.fromImage(image).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, mode))

    @Slot()
    def _idle_progress(self) -> None:
        """Before a run the bar counts the steps the next run will take (it said "0 / 100" with steps at 20)."""
        if self.running:
            return
        steps = self.steps.value() or self._default_steps
        self.progress.setRange(0, max(steps or 1, 1))
        self.progress.setValue(0)
        self.progress.setFormat(f"0 / {steps} steps" if steps else "0 steps")

    def open_cell(self, settings: dict[str, Any]) -> None:
        """A Compare grid cell: its settings in the controls and its image in the preview (the previous image
        stayed there, under settings it did not match), or an empty preview when the cell has none."""
        self.apply_settings(settings)
        file = settings.get("file")
        image = QImage(str(paths.data_dir() / str(file))) if file else QImage()
        if image.isNull():
            self.preview.clear()
            self.preview.setText("This cell's settings: Generate to make its image.")
            self.caption.clear()
        else:
            self._show_image(image)
            self.caption.setText(caption_of({**settings, "model": settings.get("model", "")}))

    def _show_entry(self, entry: dict[str, Any]) -> None:
        image = QImage(str(ImageGallery.file_of(entry)))
        if not image.isNull():
            self._show_image(image)
        self.caption.setText(caption_of(entry.get("settings", {})))

    @Slot(dict)
    def _on_gallery_selected(self, entry: dict[str, Any]) -> None:
        self._show_entry(entry)

    @Slot(dict)
    def _on_gallery_restore(self, settings: dict[str, Any]) -> None:
        self.apply_settings(settings)

    def apply_settings(self, s: dict[str, Any]) -> None:
        """Put settings (from the gallery, a run or a PNG's "parameters") back into the controls."""
        return session.apply_settings(self, s)

    def load_png_settings(self, path: str | Path) -> bool:
        """Apply the settings stored in a PNG; False (with a message) when it holds none."""
        return session.load_png_settings(self, path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if any(u.toLocalFile().lower().endswith(".png") for u in urls):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        for url in event.mimeData().urls():
            if url.toLocalFile().lower().endswith(".png"):
                self.load_png_settings(url.toLocalFile())
                event.acceptProposedAction()
                return

    # -- sessions ----------------------------------------------------------------------------------------------
    def draft(self) -> dict[str, Any]:
        return session.draft(self)

    def restore(self, draft: dict[str, Any], last_run: Run | None) -> None:
        return session.restore(self, draft, last_run)

    def show_run(self, run: Run) -> None:
        """Re-open a past run: its settings in the controls, its images in the gallery."""
        return session.show_run(self, run)

    def _add_run_images(self, run: Run) -> list[dict[str, Any]]:
        return session.add_run_images(self, run)

    def shutdown(self) -> None:
        self.worker.shutdown()

