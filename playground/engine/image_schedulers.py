"""Scheduler (sampler) choice for diffusers pipelines, by the names A1111 and other SD tools use.

Swapped with ``Class.from_config(pipe.scheduler.config)`` so the model's own betas and timestep spacing carry over.
"""

from __future__ import annotations

from typing import Any

from playground.errors import KnownError

# name -> (diffusers class, extra config)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "Euler": ("EulerDiscreteScheduler", {}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "DDIM": ("DDIMScheduler", {}),
    "LCM": ("LCMScheduler", {}),
}
_ALIASES = {"euler_a": "Euler a", "euler-a": "Euler a", "eulera": "Euler a", "dpmpp_2m": "DPM++ 2M",
            "dpm++2m": "DPM++ 2M", "dpmpp-2m": "DPM++ 2M", "dpm": "DPM++ 2M"}
_CLASS_NAMES = {cls: name for name, (cls, _) in SCHEDULERS.items()}


def canonical(name: str | None) -> str:
    """The SCHEDULERS key for a user-typed name ("euler_a", "Euler A" ...), or "default"."""
    if not name or name.lower() == "default":
        return "default"
    for key in SCHEDULERS:
        if key.lower() == name.lower():
            return key
    key = _ALIASES.get(name.lower().replace(" ", ""), _ALIASES.get(name.lower()))
    if key is None:
        raise KnownError(f"Unknown scheduler {name!r}; use one of: default, {', '.join(SCHEDULERS)}")
    return key


def display_name(scheduler: Any) -> str:
    """The A1111 name of a scheduler instance (its class name when it has none)."""
    return _CLASS_NAMES.get(type(scheduler).__name__, type(scheduler).__name__)


def applicable(original_class: str, model_hint: str = "") -> list[str]:
    """Names offered for a model: LCM only where the model is LCM-distilled (its own scheduler is LCM, or its
    name says so); the others fit any epsilon/v-prediction SD model."""
    names = [n for n in SCHEDULERS if n != "LCM"]
    if original_class == "LCMScheduler" or "lcm" in model_hint.lower():
        names.append("LCM")
    return names


def make(name: str, base_config: Any) -> Any:
    """A new scheduler ``name`` built from the model's own scheduler config."""
    import diffusers

    cls_name, extra = SCHEDULERS[name]
    cls = getattr(diffusers, cls_name)
    return cls.from_config(base_config, **extra)
