"""One worker thread owns the device: it loads models and runs generations one at a time.

Qt-free: the UI wraps it in a bridge that turns callbacks into signals. Jobs return futures; cancelling a
generation is cooperative (``Cancel`` is checked once per token). A remote model (``remote:<endpoint>/<model>``)
goes through the same queue: ``playground serve`` and the Prompt tab see one model at a time either way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from playground.domain.jobs import Cancel, ProgressEvent
from playground.domain.score import ScoreItem, ScoreResult
from playground.domain.text import Constraint, GenerationRequest, GenerationResult, TokenEvent
from playground.models.registry import Registry
from playground.runtime.dispatch import load_model, run_generation, run_score

ProgressFn = Callable[[ProgressEvent], None]
TokenFn = Callable[[TokenEvent], None]


@dataclass(frozen=True)
class LoadedInfo:
    """What the status bar shows about the loaded model."""

    model_id: str
    device: str
    dtype: str  # what the weights run at: the precision on a fast path (int4, int8, ...), else the torch dtype
    load_s: float
    context_length: int
    path: str = ""  # fused | python | generic | transformers | remote
    detail: str = ""  # one line: precision, path and the kernels' code path (TextModel.describe)


class EngineRunner:
    def __init__(self, registry: Registry | None = None, device: str | None = None,
                 dtype: str | None = None, thread_name: str = "engine") -> None:
        self.registry = registry or Registry()
        self._device = device
        self._dtype = dtype
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._model = None  # TextModel or RemoteTextModel, touched only on the worker thread

    def load(self, model_id: str, on_progress: ProgressFn = lambda e: None) -> Future[LoadedInfo]:
        """Load ``model_id`` (converting or downloading first if needed), replacing the current one."""
        return self._pool.submit(self._ensure_loaded, model_id, on_progress)

    def generate(self, model_id: str, request: GenerationRequest, on_token: TokenFn = lambda e: None,
                 cancel: Cancel | None = None,
                 on_progress: ProgressFn = lambda e: None) -> Future[GenerationResult]:
        """Generate with ``model_id``, loading it first when another model (or none) is loaded."""
        def job() -> GenerationResult:
            if cancel is not None and cancel.is_set():  # cancelled while queued: nothing to run
                return GenerationResult(model=model_id, completions=(), seed=0, prompt_tokens=0)
            self._ensure_loaded(model_id, on_progress)
            return run_generation(self._model, request, on_token, cancel)

        return self._pool.submit(job)

    def score(self, model_id: str, items: Sequence[ScoreItem], top_logprobs: int = 0,
              on_progress: ProgressFn = lambda e: None) -> Future[list[ScoreResult]]:
        """Score ``items`` with ``model_id`` (``engine/score.py``): each token's log-probability, in order."""
        def job() -> list[ScoreResult]:
            self._ensure_loaded(model_id, on_progress)
            return run_score(self._model, list(items), top_logprobs)

        return self._pool.submit(job)

    @staticmethod
    def check_constraint(constraint: Constraint) -> None:
        """Raise ParameterError when ``constraint`` cannot compile (checked on the caller's thread, not queued)."""
        from playground.engine.constrain import check

        check(constraint)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
        if wait and self._model is not None:
            self._model.unload()
            self._model = None

    def _ensure_loaded(self, model_id: str, on_progress: ProgressFn) -> LoadedInfo:
        if self._model is None or self._model.id != model_id or self._precision_changed():
            if self._model is not None:
                self._model.unload()  # one model at a time: free it before loading the next
                self._model = None
            self._model = load_model(model_id, self._device, self._dtype, on_progress, self.registry)
            on_progress(ProgressEvent(f"Loaded {model_id}", 1.0))
        return self.loaded_info()

    def loaded_info(self) -> LoadedInfo | None:
        """What is loaded now and how it runs (the status bar and --self-test show it); None when nothing is."""
        tm = self._model
        if tm is None:
            return None
        # What decode really runs at: the fast path's precision, or the model's dtype.
        fast = getattr(tm, "fast", None) is not None
        dtype = tm.precision_shown if fast else str(tm.dtype).removeprefix("torch.")
        path = getattr(tm, "path", "remote")
        detail = tm.describe() if hasattr(tm, "describe") else dtype
        return LoadedInfo(tm.id, str(tm.device), dtype, tm.load_s, tm.context_length, path, detail)

    def _precision_changed(self) -> bool:
        """True when the precision preference changed since the local model loaded (it reloads then)."""
        requested = getattr(self._model, "requested_precision", None)
        if requested is None:
            return False
        from playground.engine.text import default_precision

        return requested != default_precision()
