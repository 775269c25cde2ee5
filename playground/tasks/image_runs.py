"""An Image run, built once for the tab, the CLI and Compare's grid: the PNGs it leaves and its session record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playground.domain.image import ImageRequest, ImageResult
from playground.store.records import Run
from playground.tasks.image_meta import png_bytes, store_png

PARAM_KEYS = ("steps", "guidance", "width", "height", "batch", "scheduler")


def save_images(result: ImageResult, root: Path) -> list[dict[str, Any]]:
    """Write each image as a content-addressed PNG under ``root`` carrying its settings (its own seed); return the
    gallery entries ``{"path", "sha256", "settings"}`` in seed order."""
    entries = []
    for image, seed in zip(result.images, result.seeds, strict=True):
        settings = {**result.settings, "seed": seed}
        entries.append({**store_png(png_bytes(image, settings), root), "settings": settings})
    return entries


def image_params(settings: dict[str, Any], seed: int | None) -> dict[str, Any]:
    """The run record's params: the resolved settings that decide the pixels, and the seed."""
    return {**{k: settings[k] for k in PARAM_KEYS if k in settings}, "seed": seed}


def image_run(request: ImageRequest, result: ImageResult, entries: list[dict[str, Any]]) -> Run:
    """The session record of a finished (or stopped) image run, its PNGs by reference."""
    return Run(mode="image", model_id=result.model, params=image_params(result.settings, result.seed),
               inputs={"prompt": request.prompt, "negative_prompt": request.negative_prompt},
               outputs={"images": [{"path": e["path"], "sha256": e["sha256"]} for e in entries],
                        "seeds": list(result.seeds) if entries else [], "device": result.device},
               timings=dict(result.timings), status="cancelled" if result.cancelled else "done")


def failed_image_run(request: ImageRequest, model_id: str, error: str) -> Run:
    """The session record of an image run that failed before it produced anything."""
    return Run(mode="image", model_id=model_id, params=image_params(request.settings(), request.seed),
               inputs={"prompt": request.prompt, "negative_prompt": request.negative_prompt},
               status="failed", error=error)
