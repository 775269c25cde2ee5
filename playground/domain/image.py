"""Frozen dataclasses of the Text-to-image mode that cross threads: the request, per-step events, the result.

Kept beside ``domain.py`` (same rules: snapshots taken on the main thread, no torch, no Qt).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playground.errors import ParameterError

MAX_SIDE = 2048
MAX_BATCH = 16


@dataclass(frozen=True)
class ImageRequest:
    """One text-to-image run. ``None`` for steps/guidance/width/height means the model's own default."""

    prompt: str
    negative_prompt: str = ""
    steps: int | None = None
    guidance: float | None = None  # classifier-free guidance scale; <= 1 turns CFG off
    seed: int | None = None  # image i of a batch uses seed + i, so each image can be re-made alone
    width: int | None = None
    height: int | None = None
    batch: int = 1
    scheduler: str = "default"  # a name from playground.engine.image_schedulers.SCHEDULERS, or "default"

    def settings(self) -> dict[str, Any]:
        """The request as the settings dict the Image tab, PNG metadata and Compare's grid exchange."""
        return {"prompt": self.prompt, "negative_prompt": self.negative_prompt, "steps": self.steps,
                "guidance": self.guidance, "seed": self.seed, "width": self.width, "height": self.height,
                "batch": self.batch, "scheduler": self.scheduler}

    def validate(self) -> None:
        """Raise ValueError naming the first parameter out of range (sizes are checked against the model later)."""
        if not self.prompt.strip():
            raise ParameterError("type a prompt first")
        if self.steps is not None and not 1 <= self.steps <= 500:
            raise ParameterError("steps must be between 1 and 500")
        if self.guidance is not None and not 0 <= self.guidance <= 50:
            raise ParameterError("guidance must be between 0 and 50")
        if not 1 <= self.batch <= MAX_BATCH:
            raise ParameterError(f"batch size must be between 1 and {MAX_BATCH}")
        if self.seed is not None and not 0 <= self.seed < 2**32:
            raise ParameterError("seed must be between 0 and 4294967295")
        for name, side in (("width", self.width), ("height", self.height)):
            if side is not None and (side < 8 or side > MAX_SIDE or side % 8):
                raise ParameterError(f"{name} must be a multiple of 8 between 8 and {MAX_SIDE}")


@dataclass(frozen=True)
class StepEvent:
    """One denoising step finished; ``preview`` is a small uint8 (h, w, 3) numpy array of the first image."""

    step: int  # 1-based
    total: int
    preview: Any = None
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class ImageResult:
    """The finished images (PIL) with the settings that made them; empty ``images`` when cancelled."""

    model: str
    images: tuple[Any, ...]
    seeds: tuple[int, ...]
    settings: dict[str, Any]  # prompt, negative_prompt, steps, guidance, width, height, scheduler (resolved)
    timings: dict[str, float] = field(default_factory=dict)  # load_s, total_s, s_per_step
    cancelled: bool = False
    device: str = "cpu"

    @property
    def seed(self) -> int:
        return self.seeds[0] if self.seeds else int(self.settings.get("seed", 0))
