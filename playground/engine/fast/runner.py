"""The fast decoder runner: every family in ``arch.py``, several sequences at once, each in its own cache slot.

    runner = DecoderRunner.from_tensors(config, tensors, precision)
    logits = runner.prefill(slot, ids)               # fp32 [vocab]: the prompt's last position
    logits = runner.step(tokens, slots)              # fp32 [B, vocab]: one token for each of B slots

Each slot is an independent sequence at its own position (a sheet's cells, a comparison's columns; later the
concurrent requests of ``serve``): ``step`` runs B tokens through the weights once (the kernels read each weight
once for up to 8 rows), so B sequences cost little more than one. ``prefill`` reuses the longest prefix the slot
already holds from an earlier prefill chunk for chunk (``chunks.py``: a prompt's logits depend on its tokens alone),
``fork`` copies a prefix into another slot, ``rewind`` goes back (n completions share a prompt without copying).
Positions written by decode steps are never reused by a prefill: a prompt must give the same result whatever ran
before it.

Decode runs the fused C++ step (``csrc/decoder_step.cpp``: all layers in one call) when every weight is in a kernel
format and the library is loaded, else ``forward.decode_step``; ``path`` says which ("fused" / "python").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground import threads
from playground.domain.jobs import ProgressEvent
from playground.engine.fast import forward
from playground.engine.fast.arch import Arch, arch_from_config, fused_context_limit, rope_tables
from playground.engine.fast.chunks import prefill_chunks, reusable
from playground.engine.fast.quant import reduced_activations
from playground.engine.fast.weights import ModelWeights, build_weights

if TYPE_CHECKING:
    import torch

# Bounds a prompt's activations at once (the gate/up product, attention scores): a 512-token prompt's peak memory
# on Llama-3.2-1B Q5_K_M 1388-1416 MB in chunks of 512, 1330-1336 in 256 (128: 1297, prefill ~8% slower); prefill
# took the same time at 256 (2-core Zen 3, alternating processes; Qwen2.5-0.5B Q4_0 the same, 712 -> 672 MB).
PREFILL_CHUNK = 256
MIN_CACHE = 256
_ACT_CODES = {"silu": 0, "gelu_tanh": 1}


class DecoderRunner:
    def __init__(self, config: Any, arch: Arch, weights: ModelWeights, precision: str) -> None:
        self.config, self.arch, self.weights, self.precision = config, arch, weights, precision
        self.max_positions = fused_context_limit(config, arch)
        # Quantized precisions keep keys and values in fp16 (half the memory and the reads at long contexts, as
        # llama.cpp's default); fp32 keeps them exact. Read when the cache is first made.
        self.cache_dtype_name = "fp32" if precision in ("fp32", "bf16") else "fp16"
        self.k: torch.Tensor | None = None  # [layers, slots, kv heads, capacity, head dim]
        self.v: torch.Tensor | None = None
        self.rope: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._slots: list[_Slot] = []
        self._native: tuple | None = None  # cached arguments of the C++ step (() when it does not apply)
        self.native_enabled = True  # tests turn it off to run the Python step
        self.reused = 0  # prompt tokens the last prefill found already cached
        self.governor = threads.torch_governor()  # fewer threads while another program keeps a core busy

    @classmethod
    def from_tensors(cls, config: Any, tensors: Mapping[str, Any], precision: str, store: Path | None = None,
                     on_progress: Callable[[ProgressEvent], None] = lambda e: None) -> DecoderRunner:
        """Build from a transformers config and HF-named tensors (float or quantized); raises ``Unsupported``."""
        arch = arch_from_config(config)
        return cls(config, arch, build_weights(arch, tensors, precision, store, on_progress), precision)

    # -- slots and cache -------------------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return 0 if self.k is None else int(self.k.shape[3])

    @property
    def n_slots(self) -> int:
        return len(self._slots)

    def length(self, slot: int = 0) -> int:
        return self._slots[slot].length if slot < len(self._slots) else 0

    def ensure_slots(self, n: int) -> None:
        """Make room for ``n`` slots (existing slots keep their contents)."""
        if n > len(self._slots):
            self._resize(n, max(self.capacity, MIN_CACHE))

    def reserve(self, tokens: int) -> None:
        """Make room for ``tokens`` positions in every slot (grown by 1.5x, rounded up to 256)."""
        self.ensure_slots(1)
        if tokens <= self.capacity:
            return
        if tokens > self.max_positions:
            raise ValueError(f"{tokens} positions exceed the model's {self.max_positions}")
        size = max(tokens, min(self.capacity * 3 // 2, self.max_positions), MIN_CACHE)
        self._resize(len(self._slots), min(-(-size // 256) * 256, max(self.max_positions, tokens)))

    def _resize(self, slots: int, capacity: int) -> None:
        import torch

        a = self.arch
        dtype = torch.float32 if self.cache_dtype_name == "fp32" else torch.float16
        shape = (a.n_layers, slots, a.n_kv, capacity, a.head_dim)
        k, v = torch.zeros(shape, dtype=dtype), torch.zeros(shape, dtype=dtype)
        if self.k is not None:
            n, c = min(slots, self.k.shape[1]), min(capacity, self.capacity)
            k[:, :n, :, :c] = self.k[:, :n, :, :c]
            v[:, :n, :, :c] = self.v[:, :n, :, :c]
        self.k, self.v = k, v
        while len(self._slots) < slots:
            self._slots.append(_Slot())
        if capacity != (next(iter(self.rope.values()))[0].shape[0] if self.rope else 0):
            self.rope = rope_tables(self.config, self.arch, capacity)

    def rewind(self, length: int, slot: int = 0) -> None:
        s = self._slots[slot]
        if not 0 <= length <= s.length:
            raise ValueError(f"cannot rewind to {length}; slot {slot} holds {s.length}")
        s.length = length
        del s.tokens[length:]
        if length < s.prefilled:
            s.prefilled, s.last_logits = length, None
        s.chunks = [c for c in s.chunks if c[1] <= length]

    def fork(self, src: int, dst: int, length: int | None = None) -> None:
        """Copy the first ``length`` positions (default: all prefilled ones) of slot ``src`` into slot ``dst``."""
        self.ensure_slots(max(src, dst) + 1)
        s = self._slots[src]
        n = s.prefilled if length is None else length
        if n > s.prefilled:
            raise ValueError(f"slot {src} holds {s.prefilled} prefilled positions, not {n}")
        if src != dst:
            self.k[:, dst, :, :n] = self.k[:, src, :, :n]
            self.v[:, dst, :, :n] = self.v[:, src, :, :n]
        d = self._slots[dst]
        d.length, d.prefilled, d.tokens = n, n, list(s.tokens[:n])
        d.chunks = [c for c in s.chunks if c[1] <= n]
        d.last_logits = s.last_logits if n == s.prefilled else None

    # -- forward ---------------------------------------------------------------------------------------------
    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.weights.embed.rows(tokens)  # [T, D] fp32
        return x * self.arch.embed_scale if self.arch.embed_scale != 1.0 else x

    def prefill(self, slot: int, ids: list[int], reuse: bool = True,
                checkpoints: tuple[int, ...] = ()) -> torch.Tensor:
        """Run the prompt (after the chunks this slot already holds); return the last position's logits.
        ``checkpoints``: token counts where a later prompt is likely to diverge (the end of the source text), so
        the chunks before them can be reused."""
        import torch

        self.ensure_slots(slot + 1)
        if self.governor is not None:
            self.governor.tick()
        s = self._slots[slot]
        plan = prefill_chunks(len(ids), checkpoints, PREFILL_CHUNK)
        if reuse and s.last_logits is not None and s.tokens[:s.prefilled] == list(ids) and s.chunks == plan:
            # The very prompt this slot last prefilled, in the same chunks: its logits as computed then.
            self.rewind(len(ids), slot)
            self.reused = len(ids)
            return s.last_logits.clone()
        done = reusable(plan, s.chunks, s.tokens, ids) if reuse else 0  # chunks never cover decoded positions
        common = plan[done - 1][1] if done else 0
        self.rewind(common, slot)
        self.reused = common
        self.reserve(len(ids))
        tokens = torch.tensor(ids, dtype=torch.long)
        last = None
        for start, end in plan[done:]:
            last = forward.prefill_chunk(self, slot, tokens[start:end], start)
            s.chunks.append((start, end))
        s.tokens.extend(ids[common:])
        s.length = s.prefilled = len(ids)
        s.last_logits = self.logits(last[-1:])[0]
        return s.last_logits.clone()

    def hidden_states(self, slot: int, ids: list[int]) -> torch.Tensor:
        """The last layer's output at every position of ``ids`` (fp32 [T, D], before the final norm), run from
        position 0 of ``slot``; the slot is then not reusable by a later prefill (scoring, not generation)."""
        import torch

        self.ensure_slots(slot + 1)
        self.rewind(0, slot)
        self.reserve(len(ids))
        tokens = torch.tensor(ids, dtype=torch.long)
        parts = [forward.prefill_chunk(self, slot, tokens[start:start + PREFILL_CHUNK], start)
                 for start in range(0, len(ids), PREFILL_CHUNK)]
        return torch.cat(parts)

    def step(self, tokens: list[int], slots: list[int]) -> torch.Tensor:
        """Append tokens[b] to slot slots[b] (each slot once); return next-token logits [B, vocab]."""
        import torch

        if len(set(slots)) != len(slots) or len(tokens) != len(slots):
            raise ValueError("step wants one token per slot, each slot once")
        self.ensure_slots(max(slots) + 1)
        if self.governor is not None:
            self.governor.tick()
        positions = [self._slots[s].length for s in slots]
        self.reserve(max(positions) + 1)
        ids = torch.tensor(tokens, dtype=torch.long)
        native = self._native_args()
        if native is not None:
            kinds_order = sorted(self.rope)
            rope = [t for kind in kinds_order for t in self.rope[kind]]
            hidden = torch.ops.playground.decoder_step(
                self.embed(ids), torch.tensor(positions, dtype=torch.long), torch.tensor(slots, dtype=torch.long),
                self.k, self.v, rope, *native)
        else:
            hidden = forward.decode_step(self, ids, slots, positions)
        for token, s in zip(tokens, slots, strict=True):
            self._slots[s].tokens.append(token)
            self._slots[s].length += 1
        return self.logits(hidden)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        h = F.rms_norm(hidden, (hidden.shape[1],), self.weights.final_norm, self.arch.eps)
        out = self.weights.head(h)
        if self.arch.final_softcap:
            out = torch.tanh(out / self.arch.final_softcap) * self.arch.final_softcap
        return out

    @property
    def path(self) -> str:
        """"fused" when decode runs the one-call C++ step, else "python"."""
        return "fused" if self._native_args() is not None else "python"

    def _native_args(self) -> tuple | None:
        """Arguments of the C++ step after x, positions, slots, the caches and the rope tables; None when it does
        not apply (a weight not in a kernel format, no compiled library, turned off)."""
        if not self.native_enabled:
            return None
        if self._native is None:
            self._native = self._build_native() or ()
        return self._native or None

    def _build_native(self) -> tuple | None:
        from playground.engine.fast import kernels

        a = self.arch
        if not kernels.available():
            return None
        weights, kinds, counts, biases = [], [], [], []
        import torch

        empty = torch.empty(0)
        for layer in self.weights.layers:
            for group in layer.groups():
                segs = group.kernel_segments()
                if segs is None:
                    return None
                counts.append(len(segs))
                for kind, tensors in segs:
                    kinds.append(kind)
                    weights.extend(t.contiguous() for t in tensors)
                biases.append(group.bias if group.bias is not None else empty)
        norms = []
        for layer in self.weights.layers:
            norms += [layer.attn_in] + ([layer.attn_out] if a.sandwich else []) + [layer.mlp_in]
            norms += ([layer.mlp_out] if a.sandwich else []) + ([layer.q_norm, layer.k_norm] if a.qk_norm else [])
        kinds_order = sorted(set(a.rope_kinds))
        layer_rope = [kinds_order.index(k) for k in a.rope_kinds]
        # Bit j: group j (qkv, o, gate_up, down) rounds its input to int8 (every layer alike; see layer_precision).
        int8_mask = sum(1 << j for j, group in enumerate(self.weights.layers[0].groups())
                        if all(reduced_activations(p.precision) for p in group.parts))
        return (norms, weights, kinds, counts, biases, layer_rope, list(a.windows), a.n_heads, a.n_kv,
                a.rotary_dim, a.eps, a.attn_scale, a.attn_softcap, _ACT_CODES[a.act], a.sandwich, a.qk_norm, int8_mask)

    def quantized_bytes(self) -> int:
        return self.weights.nbytes()


class _Slot:
    __slots__ = ("length", "tokens", "prefilled", "last_logits", "chunks")

    def __init__(self) -> None:
        self.length = 0
        self.tokens: list[int] = []
        self.prefilled = 0  # positions [0, prefilled) came from prefill: reusable
        self.last_logits: Any = None  # the logits of position prefilled - 1, as prefill returned them
        self.chunks: list[tuple[int, int]] = []  # the prefill chunks [start, end) that computed the cache's start
