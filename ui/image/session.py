"""The Image tab's settings and session side: settings into the controls (from a run, the gallery, a PNG), its draft,
restoring it, and re-opening a saved run (its images in the gallery)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QImage

from playground.errors import KnownError
from playground.models.demo_image import DEMO_IMAGE_ID
from playground.store.records import Run
from playground.tasks.image_meta import read_settings

if TYPE_CHECKING:
    from ui.image.tab import ImageTab


def draft(tab: ImageTab) -> dict[str, Any]:
    r = tab.request()
    return {"prompt": r.prompt, "negative_prompt": r.negative_prompt, "steps": r.steps, "guidance": r.guidance,
            "seed": r.seed, "width": r.width, "height": r.height, "batch": r.batch, "scheduler": r.scheduler,
            "model": tab.model.currentText(), "gallery": tab.gallery.entries()}


def restore(tab: ImageTab, draft: dict[str, Any], last_run: Run | None) -> None:
    tab.prompt.setPlainText(str(draft.get("prompt", "")))
    tab.negative.setText(str(draft.get("negative_prompt", "")))
    tab.steps.setValue(draft["steps"] if isinstance(draft.get("steps"), int) else 0)
    g = draft.get("guidance")
    tab.guidance.setValue(float(g) if isinstance(g, int | float) else -0.5)
    tab.seed.setValue(draft["seed"] if isinstance(draft.get("seed"), int) else -1)
    tab.width_box.setValue(draft["width"] if isinstance(draft.get("width"), int) else 0)
    tab.height_box.setValue(draft["height"] if isinstance(draft.get("height"), int) else 0)
    tab.batch.setValue(draft["batch"] if isinstance(draft.get("batch"), int) else 1)
    index = tab.scheduler.findText(str(draft.get("scheduler", "default")))
    tab.scheduler.setCurrentIndex(max(index, 0))
    tab.model.setCurrentText(str(draft.get("model") or DEMO_IMAGE_ID))
    gallery = draft.get("gallery")
    tab.gallery.set_entries(gallery if isinstance(gallery, list) else [])
    if not tab.gallery.entries() and last_run is not None:
        tab._add_run_images(last_run)
    tab.clear_error()
    tab.status.clear()
    tab._idle_progress()  # no step counter left from the session before
    entries = tab.gallery.entries()
    if entries:
        tab._show_entry(entries[-1])
    else:
        tab.preview.clear()
        tab.caption.clear()


def show_run(tab: ImageTab, run: Run) -> None:
    """Re-open a past run: its settings in the controls, its images in the gallery."""
    tab.apply_settings({**run.params, **run.inputs, "model": run.model_id})
    entries = tab._add_run_images(run)
    if entries:
        tab._show_entry(entries[0])
    if run.error:
        tab.show_error(run.error)


def add_run_images(tab: ImageTab, run: Run) -> list[dict[str, Any]]:
    seeds = run.outputs.get("seeds") or []
    entries = []
    for i, ref in enumerate(run.outputs.get("images") or []):
        if not isinstance(ref, dict) or not ref.get("path"):
            continue
        settings = {**run.params, **run.inputs, "model": run.model_id}
        if i < len(seeds):
            settings["seed"] = seeds[i]
        entries.append({"path": ref["path"], "sha256": ref.get("sha256", ""), "settings": settings})
    for e in reversed(entries):
        tab.gallery.add(e, select=False)
    return entries


def apply_settings(tab: ImageTab, s: dict[str, Any]) -> None:
    """Put settings (from the gallery, a run or a PNG's "parameters") back into the controls."""
    if "prompt" in s:
        tab.prompt.setPlainText(str(s["prompt"]))
    if "negative_prompt" in s:
        tab.negative.setText(str(s.get("negative_prompt") or ""))
    if isinstance(s.get("steps"), int):
        tab.steps.setValue(s["steps"])
    if isinstance(s.get("guidance"), int | float):
        tab.guidance.setValue(float(s["guidance"]))
    if isinstance(s.get("seed"), int):
        tab.seed.setValue(s["seed"] if s["seed"] <= tab.seed.maximum() else -1)
    if isinstance(s.get("width"), int) and isinstance(s.get("height"), int):
        tab.width_box.setValue(s["width"])
        tab.height_box.setValue(s["height"])
    if isinstance(s.get("batch"), int):
        tab.batch.setValue(s["batch"])
    sched = str(s.get("scheduler", ""))
    index = tab.scheduler.findText(sched)
    tab.scheduler.setCurrentIndex(index if index >= 0 else 0)
    if s.get("model"):
        tab.model.setCurrentText(str(s["model"]))
    tab.changed.emit()


def load_png_settings(tab: ImageTab, path: str | Path) -> bool:
    """Apply the settings stored in a PNG; False (with a message) when it holds none."""
    try:
        settings = read_settings(Path(path))
    except KnownError as exc:
        tab.show_error(str(exc))
        return False
    if settings is None:
        tab.show_error(f"{Path(path).name} carries no generation settings")
        return False
    tab.clear_error()
    tab.apply_settings(settings)
    image = QImage(str(path))
    if not image.isNull():
        tab._show_image(image)
    return True
