"""The generic fast path: any transformers decoder, its ``nn.Linear`` layers swapped for quantized ones (the int4 /
int8 kernels) and a static KV cache per slot. For families without a fused runner (``arch.py``): close to
kernel-bound on models >= 0.5B, where matmuls dominate; transformers' own module code does the rest.

Same interface as ``runner.DecoderRunner`` (prefill / step / rewind / fork, slots), so the generation loop, the
sheet fill and comparisons use either. ``path`` is "generic".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from playground.engine.fast.chunks import prefill_chunks, reusable
from playground.engine.fast.quant import QLinear, weight_format

if TYPE_CHECKING:
    import torch

MIN_CACHE = 256


def quantize_linears(model: Any, precision: str) -> int:
    """Replace every ``nn.Linear`` of ``model`` whose input size is a multiple of 32 by a quantized one (the LM
    head at int8); drop the float weights. Returns how many were replaced."""
    import torch

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    head_precision = "int8-a8" if precision.endswith("-a8") else "int8"
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, torch.nn.Linear) or child.in_features % 32:
                continue
            lin = QLinear(child.weight.detach(), head_precision if child is head else precision)
            bias = None if child.bias is None else child.bias.detach().float().clone()
            setattr(parent, name, _QuantModule(lin, bias))  # a tied embedding keeps its own float table
            replaced += 1
    return replaced


def _module_base() -> type:
    import torch

    return torch.nn.Module


class _QuantModule(_module_base()):  # type: ignore[misc]
    def __init__(self, lin: QLinear, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.lin, self.bias = lin, bias
        self.in_features, self.out_features = lin.k, lin.n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = self.lin(x.reshape(-1, shape[-1]).float())
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.lin.n).to(x.dtype)


class GenericRunner:
    path = "generic"

    def __init__(self, model: Any, precision: str) -> None:
        if weight_format(precision) not in ("int4", "int8"):
            raise ValueError(f"the generic path quantizes; {precision} is not a quantized precision")
        self.model, self.precision = model, precision
        self.replaced = quantize_linears(model, precision)
        self.max_positions = int(getattr(model.config, "max_position_embeddings", 0) or 1 << 30)
        self._caches: list[Any] = []
        self._tokens: list[list[int]] = []
        self._prefilled: list[int] = []
        self._chunks: list[list[tuple[int, int]]] = []  # per slot: the prefill chunks that computed its cache
        self.reused = 0

    @property
    def n_slots(self) -> int:
        return len(self._caches)

    def length(self, slot: int = 0) -> int:
        return len(self._tokens[slot]) if slot < len(self._tokens) else 0

    def ensure_slots(self, n: int) -> None:
        while len(self._caches) < n:
            self._caches.append(None)
            self._tokens.append([])
            self._prefilled.append(0)
            self._chunks.append([])

    def _cache(self, slot: int, tokens: int) -> Any:
        """The slot's static cache, re-made larger (and refilled) when ``tokens`` do not fit."""
        from transformers import StaticCache

        cache = self._caches[slot]
        size = getattr(cache, "max_cache_len", 0) if cache is not None else 0
        if tokens <= size:
            return cache
        size = min(max(MIN_CACHE, tokens * 3 // 2), max(self.max_positions, tokens))
        self._caches[slot] = StaticCache(config=self.model.config, max_cache_len=size)
        kept = self._tokens[slot]
        self._tokens[slot], self._prefilled[slot], self._chunks[slot] = [], 0, []
        if kept:  # recomputed in one go: not the chunks a fresh prefill runs, so not reused by one
            self._run(slot, kept, 0)
        return self._caches[slot]

    def _run(self, slot: int, ids: list[int], start: int) -> torch.Tensor:
        import torch

        from playground.engine.generate import cache_kwarg

        cache = self._caches[slot]
        positions = torch.arange(start, start + len(ids))
        out = self.model(input_ids=torch.tensor([ids]), cache_position=positions, position_ids=positions[None],
                         use_cache=True, logits_to_keep=1, **{cache_kwarg(self.model): cache})
        self._tokens[slot] = self._tokens[slot][:start] + list(ids)
        return out.logits[0, -1].float()

    def rewind(self, length: int, slot: int = 0) -> None:
        if not 0 <= length <= self.length(slot):
            raise ValueError(f"cannot rewind to {length}; slot {slot} holds {self.length(slot)}")
        del self._tokens[slot][length:]
        self._prefilled[slot] = min(self._prefilled[slot], length)
        self._chunks[slot] = [c for c in self._chunks[slot] if c[1] <= length]

    def fork(self, src: int, dst: int, length: int | None = None) -> None:
        """Start slot ``dst`` with the first ``length`` prefilled tokens of ``src`` (recomputed: the static
        cache layers are not copied here)."""
        self.ensure_slots(max(src, dst) + 1)
        n = self._prefilled[src] if length is None else length
        ids = self._tokens[src][:n]
        if src != dst and ids:
            self.prefill(dst, ids, reuse=False)

    def prefill(self, slot: int, ids: list[int], reuse: bool = True,
                checkpoints: tuple[int, ...] = ()) -> torch.Tensor:
        """Run the prompt in its chunks (``chunks.py``), after those this slot already holds."""
        self.ensure_slots(slot + 1)
        plan = prefill_chunks(len(ids), checkpoints)
        done = reusable(plan, self._chunks[slot], self._tokens[slot], ids) if reuse else 0
        common = plan[done - 1][1] if done else 0
        self.rewind(common, slot)
        self.reused = common
        if self._cache(slot, len(ids)) is not None and common and not self._chunks[slot]:
            self.rewind(0, slot)  # the cache was re-made (its positions recomputed in one go): run it all
            common = self.reused = done = 0
        logits = None
        for start, end in plan[done:]:
            logits = self._run(slot, ids[start:end], start)
            self._chunks[slot].append((start, end))
        self._prefilled[slot] = len(ids)
        return logits

    def step(self, tokens: list[int], slots: list[int]) -> torch.Tensor:
        import torch

        self.ensure_slots(max(slots) + 1)
        rows = []
        for token, slot in zip(tokens, slots, strict=True):
            self._cache(slot, self.length(slot) + 1)
            rows.append(self._run(slot, [token], self.length(slot)))
        return torch.stack(rows)

    def quantized_bytes(self) -> int:
        return sum(m.lin.nbytes() for m in self.model.modules() if isinstance(m, _QuantModule))
