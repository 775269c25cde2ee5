"""A memory-budgeted cache of loaded text models: several can stay loaded for a comparison, never more than fit.

Each model's size is measured from its parameters and buffers once loaded; before loading one whose size is
known (or estimated from its files on disk), least-recently-used models are unloaded until it fits. Touched only
from one worker thread; ``state()`` is an immutable snapshot other threads may read.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from playground.domain.jobs import ProgressEvent

ProgressFn = Callable[[ProgressEvent], None]
Loader = Callable[[str, ProgressFn], Any]  # -> TextModel
FALLBACK_RAM = 8 * 2**30


@dataclass(frozen=True)
class PoolState:
    """What the budget line shows: each loaded model's size, the total and the budget."""

    loaded: tuple[tuple[str, int], ...]  # (model id, bytes), least recently used first
    budget_bytes: int

    @property
    def used_bytes(self) -> int:
        return sum(size for _, size in self.loaded)

    def describe(self) -> str:
        """``"240 MB of 1024 MB: a (120 MB), b (120 MB)"``."""
        names = ", ".join(f"{mid.rstrip('/').split('/')[-1]} ({size / 2**20:.1f} MB)" for mid, size in self.loaded)
        return f"{self.used_bytes / 2**20:.1f} MB of {self.budget_bytes / 2**20:.0f} MB" + (f": {names}" if names
                                                                                            else "")


def model_bytes(tm: Any) -> int:
    """Bytes a loaded TextModel holds (0 once unloaded, or for a remote model): its fast runner's weights and KV
    cache, and transformers' module where one is loaded. Measured without loading that module: on the fused path
    it loads on demand at full precision (weighing a Qwen2.5-0.5B GGUF this way had loaded its 1.9 GB fp32 copy)."""
    tensors: list[Any] = []
    fast = getattr(tm, "fast", None)
    total = 0
    if fast is not None:
        weights = getattr(fast, "weights", None)
        if weights is not None:  # the fused runner
            total += weights.nbytes() + (weights.embed.nbytes() if weights.embed is not weights.head else 0)
        elif hasattr(fast, "quantized_bytes"):  # the generic runner (its float tensors: the module's below)
            total += fast.quantized_bytes()
        tensors += [t for t in (getattr(fast, "k", None), getattr(fast, "v", None)) if t is not None]
    module = tm.hf_model if hasattr(tm, "hf_model") else getattr(tm, "model", None)
    if module is not None and hasattr(module, "parameters"):
        tensors += list(module.parameters()) + list(module.buffers())
    seen: set[int] = set()
    for t in tensors:  # tied weights (embedding = head) count once
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
    return total


def default_budget_bytes() -> int:
    """Half the machine's physical memory: room for the app, the OS and the image engine."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = FALLBACK_RAM
    return max(total // 2, 256 * 2**20)


def default_loader(device: str | None = None, dtype: str | None = None) -> Loader:
    """Resolve through the registry (embedded model, folders, GGUF, HF cache) and load with transformers; a
    ``remote:`` id becomes a RemoteTextModel (0 bytes: it holds nothing)."""
    def load(model_id: str, on_progress: ProgressFn) -> Any:
        from playground.runtime.dispatch import load_model

        return load_model(model_id, device, dtype, on_progress)

    return load


class ModelPool:
    def __init__(self, loader: Loader | None = None, budget_bytes: int | None = None,
                 measure: Callable[[Any], int] = model_bytes,
                 on_change: Callable[[PoolState], None] = lambda s: None) -> None:
        self._loader = loader or default_loader()
        self.budget_bytes = budget_bytes if budget_bytes is not None else default_budget_bytes()
        self._measure = measure
        self._on_change = on_change
        self._models: OrderedDict[str, tuple[Any, int]] = OrderedDict()  # id -> (model, bytes), LRU first
        self._known: dict[str, int] = {}  # sizes of models seen before, to make room before reloading them
        self.loads: list[str] = []  # every load, in order (what a user would see as "loading…")
        self.evictions: list[str] = []

    def state(self) -> PoolState:
        return PoolState(tuple((mid, size) for mid, (_, size) in self._models.items()), self.budget_bytes)

    def set_budget(self, budget_bytes: int) -> None:
        """Change the budget; models beyond it are unloaded at once (the most recent one stays)."""
        self.budget_bytes = max(int(budget_bytes), 0)
        self._evict_to(self.budget_bytes, keep=next(reversed(self._models), None))
        self._on_change(self.state())

    def get(self, model_id: str, on_progress: ProgressFn = lambda e: None) -> Any:
        """The loaded model for ``model_id``, loading it (after making room) when it is not in the pool."""
        if model_id in self._models:
            self._models.move_to_end(model_id)
            return self._models[model_id][0]
        self._evict_to(self.budget_bytes - self._known.get(model_id, 0), keep=None)
        tm = self._loader(model_id, on_progress)
        size = self._measure(tm)
        self._known[model_id] = size
        self._models[model_id] = (tm, size)
        self.loads.append(model_id)
        # a model bigger than the whole budget still runs: alone
        self._evict_to(self.budget_bytes, keep=model_id)
        self._on_change(self.state())
        return tm

    def unload_all(self) -> None:
        for model_id in list(self._models):
            self._unload(model_id)
        self._on_change(self.state())

    def _evict_to(self, limit: int, keep: str | None) -> None:
        while self._models and sum(size for _, size in self._models.values()) > limit:
            victim = next((mid for mid in self._models if mid != keep), None)
            if victim is None:
                return
            self._unload(victim)
            self.evictions.append(victim)

    def _unload(self, model_id: str) -> None:
        tm, _ = self._models.pop(model_id)
        unload = getattr(tm, "unload", None)
        if unload is not None:
            unload()
