"""The runner's weights, built from (config, tensors keyed by transformers' parameter names).

``tensors`` may hold plain torch tensors (an HF safetensors folder, read lazily through
``safetensors_read.SafetensorsTensors``, one layer at a time) or already quantized weights (a GGUF file:
``Int4Weight`` / int8 holders): both go through ``build_weights``. Float weights are quantized to the precision asked
for (and kept in ``store`` so the next load skips it); quantized ones keep their format. Fusing: q/k/v into one QKV
group and gate/up into one, so a decode step reads x once per group; a GGUF's already quantized parts (int4 and
int8 mixed, often) stay separate segments of one kernel call, never concatenated. No float copy of a quantized weight
is ever kept."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground.domain.jobs import ProgressEvent
from playground.engine.fast.arch import Arch, Unsupported
from playground.engine.fast.quant import QUANTIZED, QLinear, layer_precision, stored_format, weight_format

if TYPE_CHECKING:
    import torch


@dataclass
class Group:
    """One fused linear: its segments (one for float weights quantized together; a GGUF's already quantized parts one
    each, multiplied in one kernel call) and an optional fp32 bias."""

    parts: list[QLinear]
    bias: torch.Tensor | None = None

    @property
    def n(self) -> int:
        return sum(p.n for p in self.parts)

    def __call__(self, x: torch.Tensor, prefill: bool = False, out: torch.Tensor | None = None) -> torch.Tensor:
        """x @ W.T (+ bias); ``out``: a kept flat fp32 buffer of at least T * n floats to write the result into where
        the kernels take the call (prefill's gate/up product: fresh memory that size costs a page fault per 4 KiB)."""
        import torch

        size = x.shape[0] * self.n
        if out is not None and self.bias is None and x.dim() == 2 and out.dim() == 1 and out.numel() >= size:
            y = self._one_call(x, prefill, out[:size].view(x.shape[0], self.n))
            if y is not None:
                return y
        if len(self.parts) == 1:
            y = self.parts[0](x, prefill)
        else:
            y = self._one_call(x, prefill)
            if y is None:
                y = torch.cat([p(x, prefill) for p in self.parts], -1)
        return y if self.bias is None else y.add_(self.bias)

    def _one_call(self, x: torch.Tensor, prefill: bool, out: torch.Tensor | None = None) -> torch.Tensor | None:
        """Every part in one kernel call writing its own columns (x read and converted once, no concatenation of
        the outputs: prefill's are tens of MiB), into ``out`` when given (contiguous), or None where the kernels do
        not take this call."""
        import torch

        from playground.engine.fast import kernels
        from playground.engine.fast.quant import reduced_activations

        segs = self.kernel_segments()
        a8 = {reduced_activations(p.precision) for p in self.parts}
        if segs is None or len(a8) != 1 or x.dtype != torch.float32 or not x.is_cpu or x.dim() != 2 \
                or not kernels.available():
            return None
        flat = [t for _, ts in segs for t in ts]
        kinds = [kind for kind, _ in segs]
        if out is not None and out.is_contiguous() and out.dtype == torch.float32:
            kernels.op("qlinear_into")(x, flat, kinds, out, a8.pop(), True, prefill)
            return out
        return kernels.op("qlinear")(x, flat, kinds, a8.pop(), True, prefill)

    def kernel_segments(self) -> list[tuple[int, list[torch.Tensor]]] | None:
        segs = [p.kernel_segment() for p in self.parts]
        return None if any(s is None for s in segs) else segs

    def nbytes(self) -> int:
        return sum(p.nbytes() for p in self.parts)


@dataclass
class LayerWeights:
    attn_in: torch.Tensor  # RMSNorm weights as multiplied (Gemma's 1 + w already added), fp32
    mlp_in: torch.Tensor
    qkv: Group
    o: Group
    gate_up: Group
    down: Group
    attn_out: torch.Tensor | None = None  # Gemma 2/3 (sandwich)
    mlp_out: torch.Tensor | None = None
    q_norm: torch.Tensor | None = None  # Qwen3, Gemma 3
    k_norm: torch.Tensor | None = None

    def groups(self) -> tuple[Group, Group, Group, Group]:
        return self.qkv, self.o, self.gate_up, self.down


@dataclass
class ModelWeights:
    layers: list[LayerWeights]
    final_norm: torch.Tensor
    head: QLinear  # [vocab, D]
    embed: QLinear  # the same object as head when the embedding is tied
    extra: dict[str, Any] = field(default_factory=dict)

    def nbytes(self) -> int:
        """Bytes of weights a decode step reads (layers + head)."""
        return sum(g.nbytes() for layer in self.layers for g in layer.groups()) + self.head.nbytes()


def _norm(tensors: Mapping[str, Any], name: str, arch: Arch) -> torch.Tensor:
    w = tensors[name].float()
    return (1.0 + w) if arch.norm_plus_one else w.clone()


def _float_rows(w: Any) -> torch.Tensor:
    """A float weight as fp32 (a quantized one is never expanded here)."""
    return w.float()


def build_weights(arch: Arch, tensors: Mapping[str, Any], precision: str, store: Path | None = None,
                  on_progress: Callable[[ProgressEvent], None] = lambda e: None) -> ModelWeights:
    """The runner's weights for ``arch`` from HF-named ``tensors`` at ``precision`` (see the module docstring)."""
    from playground.engine.fast import store as qstore

    head_precision = _head_precision(precision)
    names = [f"{i}.{g}" for i in range(arch.n_layers) for g in ("qkv", "o", "gate_up", "down")]
    floats = _float_source(tensors)
    if not arch.tied:
        names.append("embed")
    names.append("head")
    wanted = {n: head_precision if n in ("head", "embed") else layer_precision(precision, n.split(".")[-1])
              for n in names}
    stored = qstore.load(store, wanted) if store is not None and floats and precision != "fp32" else None
    linears: dict[str, QLinear] = {} if stored is None else stored
    layers = []
    for i in range(arch.n_layers):
        if i % 4 == 0:
            # a quantized file's layers keep their own formats ("at int8" had read as a Q5_K_M file's fate)
            stage = (f"Preparing layers at {precision}" if floats else "Preparing layers in the file's formats")
            on_progress(ProgressEvent(stage + (" (first load at this precision only)" if stored is None and floats
                                               and precision != "fp32" else ""), i / arch.n_layers))
        p = f"model.layers.{i}."
        groups = {}
        for group, parts in _layer_linears(arch, tensors, p).items():
            name = f"{i}.{group}"
            g = _group(parts, wanted[name], linears.get(name), tensors)
            groups[group] = g
            if len(g.parts) == 1:
                linears[name] = g.parts[0]
        layers.append(LayerWeights(
            attn_in=_norm(tensors, p + "input_layernorm.weight", arch),
            mlp_in=_norm(tensors, p + ("pre_feedforward_layernorm.weight" if arch.sandwich
                                       else "post_attention_layernorm.weight"), arch),
            attn_out=_norm(tensors, p + "post_attention_layernorm.weight", arch) if arch.sandwich else None,
            mlp_out=_norm(tensors, p + "post_feedforward_layernorm.weight", arch) if arch.sandwich else None,
            q_norm=_norm(tensors, p + "self_attn.q_norm.weight", arch) if arch.qk_norm else None,
            k_norm=_norm(tensors, p + "self_attn.k_norm.weight", arch) if arch.qk_norm else None,
            **groups))
    # Read the float embedding only when no stored head / embedding replaces it (Gemma 3's is 0.7 GB in fp32).
    head = linears.get("head")
    if head is None:
        own_head = not arch.tied and "lm_head.weight" in tensors
        head = QLinear.wrap(tensors["lm_head.weight" if own_head else "model.embed_tokens.weight"], head_precision)
    embed = head if arch.tied else (linears.get("embed")
                                    or QLinear.wrap(tensors["model.embed_tokens.weight"], head_precision))
    note = None
    if store is not None and floats and precision != "fp32" and stored is None:
        keep = dict(linears)
        keep["head"] = head
        if not arch.tied:
            keep["embed"] = embed
        note = qstore.save(store, keep)
        if note:  # a read-only data dir, a full disk: the model runs all the same
            on_progress(ProgressEvent(note, None))
    on_progress(ProgressEvent("Layers ready", 1.0))
    weights = ModelWeights(layers, _norm(tensors, "model.norm.weight", arch), head, embed)
    if note:
        weights.extra["store_note"] = note
    return weights


def _head_precision(precision: str) -> str:
    """The tied embedding is not on a 4-bit grid: the head is int8 whenever the layers are quantized."""
    if precision in ("fp32", "bf16"):
        return precision
    return "int8-a8" if precision.endswith("-a8") else "int8"


def _float_source(tensors: Mapping[str, Any]) -> bool:
    """Whether the linear weights are floats (to be quantized now) rather than already quantized. A GGUF file's
    tensors say so from the file's types, without repacking one just to look at it."""
    source_type = getattr(tensors, "source_type", None)
    if source_type is not None:
        from playground.engine.fast.gguf_repack import FLOATS

        return all(source_type(name) in FLOATS for name in _probe_names(tensors))
    return not any(stored_format(tensors[name]) != "float" for name in _probe_names(tensors))


def _probe_names(tensors: Mapping[str, Any]) -> Iterator[str]:
    """A few linear weights, enough to tell a quantized source from a float one."""
    for name in ("model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.qkv_proj.weight",
                 "model.layers.0.mlp.down_proj.weight"):
        if name in tensors:
            yield name


def _layer_linears(arch: Arch, tensors: Mapping[str, Any], p: str) -> dict[str, list[str]]:
    """Per group, the module names of its parts in output order (their weights are ``name + ".weight"``, read only
    where no stored group replaces them)."""
    att, mlp = p + "self_attn.", p + "mlp."
    qkv = [att + "qkv_proj"] if att + "qkv_proj.weight" in tensors else [att + f"{x}_proj" for x in "qkv"]
    gate_up = ([mlp + "gate_up_proj"] if mlp + "gate_up_proj.weight" in tensors
               else [mlp + f"{x}_proj" for x in ("gate", "up")])
    missing = [n + ".weight" for n in (*qkv, *gate_up, att + "o_proj", mlp + "down_proj")
               if n + ".weight" not in tensors]
    if missing:
        raise Unsupported(f"the checkpoint lacks {missing[0]}")
    return {"qkv": qkv, "o": [att + "o_proj"], "gate_up": gate_up, "down": [mlp + "down_proj"]}


def _group(parts: list[str], precision: str, stored: QLinear | None, tensors: Mapping[str, Any]) -> Group:
    import torch

    biases = [tensors.get(name + ".bias") for name in parts]
    bias = None
    if any(b is not None for b in biases):
        bias = torch.cat([b.float() if b is not None else torch.zeros(_rows(tensors[name + ".weight"]))
                          for b, name in zip(biases, parts, strict=True)])
    if stored is not None:  # the float weights are not read at all (they were, and dropped: 0.27 GB for SmolLM2)
        return Group([stored], bias)
    weights = [tensors[name + ".weight"] for name in parts]
    if all(stored_format(w) == "float" for w in weights):
        # Fused before quantizing: the result is the same (groups run along rows), and it is one allocation.
        fused = torch.cat([_float_rows(w) for w in weights]) if len(weights) > 1 else _float_rows(weights[0])
        return Group([QLinear(fused, precision)], bias)
    # Already quantized parts (a GGUF's q, k, v) stay separate segments of the group: the kernels take a list of
    # segments in one call, so concatenating them only copied every fused weight once more at load (Qwen2.5-3B:
    # 0.8 GB of gate/up rows).
    segments = [QLinear.wrap(w, precision) for w in weights]
    if any(s.format not in QUANTIZED for s in segments) and weight_format(precision) in QUANTIZED:
        segments = [s if s.format in QUANTIZED else QLinear(s.weight, precision) for s in segments]
    return Group(segments, bias)


def _rows(w: Any) -> int:
    return int(w.qweight.shape[0]) if hasattr(w, "qweight") else int(w.shape[0])
