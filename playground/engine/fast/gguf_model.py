"""Load a GGUF file straight into the engine's formats: ``load_gguf(path) -> GgufModel``.

``GgufModel.config`` is the Hugging Face config dict of the model's family (``gguf_config``), ``tensors`` maps HF
parameter names (``model.layers.0.self_attn.q_proj.weight``, [out, in]) to ``Int4Weight`` (from Q4_0 / Q4_1 /
Q4_K), ``Int6Weight`` (Q6_K, on AVX512-VNNI and AVX2 CPUs), ``Int8Group`` (Q8_0 / Q5_0 / Q5_1 / Q5_K / Q3_K / Q2_K /
IQ4_NL / IQ4_XS; Q6_K elsewhere) or a torch tensor (F32 / F16 / BF16, a view of the memory map unless the
converter's changes had to be undone), and ``tokenizer`` is a transformers tokenizer built from the file's
metadata (``gguf_tokenizer``). No fp32 copy of the model is made; ``to_transformers()`` makes one, for tests and
for running a model the fast path does not cover.

Anything the loader cannot take (another architecture, tensor type or tokenizer) raises ``UnsupportedModel``
naming it: the caller falls back to transformers' own GGUF conversion.
"""

from __future__ import annotations

import mmap
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from playground.domain.jobs import ProgressEvent
from playground.engine.fast import gguf_config, gguf_repack, int5_kernel
from playground.engine.fast.gguf_read import GgufFile, TensorInfo
from playground.engine.fast.gguf_split import SplitGguf, open_gguf
from playground.engine.gc_pause import collector_paused
from playground.errors import DamagedModel, UnsupportedModel

ProgressFn = Callable[[ProgressEvent], None]
REPACK_CHUNK_BYTES = 16 << 20  # file bytes of a large quantized tensor repacked at a time
FOLIO_BYTES = 2 << 20  # the largest page-cache folio on x86-64 and arm64 with 4 KB pages (a PMD)


@dataclass
class GgufModel:
    path: Path
    config: dict[str, Any]  # HF config dict (model_type, hidden_size, ..., rope_parameters)
    tensors: Mapping[str, Any]  # HF parameter name -> Int4Weight | Int8Group | torch.Tensor
    tokenizer: Any  # transformers PreTrainedTokenizerFast (None when loaded with tokenizer=False)
    source_types: dict[str, str] = field(default_factory=dict)  # HF name -> GGUF tensor type ("Q4_K", "F32", ...)
    timings: dict[str, float] = field(default_factory=dict)  # seconds: read, tensors, tokenizer
    eos_ids: frozenset[int] = frozenset()

    def state_dict(self) -> dict[str, Any]:
        """Every parameter as an fp32 torch tensor (dequantized: the model's full fp32 size in memory)."""
        return {name: gguf_repack.dequantize(w) for name, w in self.tensors.items()}

    def to_transformers(self, attn_implementation: str | None = None) -> Any:
        """A transformers model (fp32, eval mode) built from ``config`` and the dequantized tensors
        (``attn_implementation``: "eager" for the inspector, which reads the attention weights)."""
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM
        from transformers.initialization import no_init_weights

        cfg = dict(self.config)
        config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
        with no_init_weights():
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32,
                                                     attn_implementation=attn_implementation)
        # assign: the dequantized tensors become the parameters (a copy into fresh ones had held the model twice)
        missing, unexpected = model.load_state_dict(self.state_dict(), strict=False, assign=True)
        tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
        absent = sorted(set(missing) - tied)
        if absent or unexpected:
            said = [f"the file lacks {len(absent)} of its tensors (e.g. {', '.join(absent[:3])})"] if absent else []
            said += [f"the {config.model_type} model has no place for {', '.join(sorted(unexpected)[:3])}"] \
                if unexpected else []
            raise UnsupportedModel(f"{self.path.name}: {'; '.join(said)}")
        if tied:
            model.tie_weights()
        return model.eval()


class GgufTensors(Mapping):
    """The file's tensors under HF names, each repacked from the memory map when asked for (not kept): the runner
    builds its weights one layer at a time, so a load never holds the model twice."""

    def __init__(self, gguf: GgufFile | SplitGguf, arch: str, config: dict[str, Any], names: list[str]) -> None:
        self._gguf, self._arch, self._config = gguf, arch, config
        self._data: dict[int, np.ndarray] = {}  # per file (a split GGUF's parts): the whole of it, mapped, no copy
        self._by_hf = {gguf_config.hf_name(n, arch): n for n in names}  # raises on an unknown tensor, before work

    def _file_data(self, gguf_name: str) -> tuple[GgufFile, np.ndarray]:
        f = self._gguf.file_of(gguf_name)
        if id(f) not in self._data:
            self._data[id(f)] = np.frombuffer(f.buffer(), dtype=np.uint8)
        return f, self._data[id(f)]

    def raw(self, gguf_name: str) -> np.ndarray:
        t = self._gguf.tensors[gguf_name]
        return self._file_data(gguf_name)[1][t.offset:t.offset + t.nbytes]

    def source_type(self, hf: str) -> str:
        return self._gguf.tensors[self._by_hf[hf]].type_name

    def nbytes(self, hf: str) -> int:
        return self._gguf.tensors[self._by_hf[hf]].nbytes

    def numel(self, hf: str) -> int:
        return int(np.prod(self._gguf.tensors[self._by_hf[hf]].shape, dtype=np.int64))

    def repacked_nbytes(self, hf: str) -> int:
        info = self._gguf.tensors[self._by_hf[hf]]
        return gguf_repack.repacked_nbytes(info.type_name, info.shape)

    def __getitem__(self, hf: str) -> Any:
        name = self._by_hf[hf]
        info = self._gguf.tensors[name]
        rows = gguf_config.undo_rows(name, self._arch, self._config, info.shape[0])
        if info.type_name in gguf_repack.FLOATS:
            weight = gguf_repack.repack(self.raw(name), info.type_name, info.shape, rows)
            if weight.dim() == 1:  # a norm or a bias: copied out, so that using it never maps the file again
                weight = weight.clone()
                _drop_pages(self._gguf.file_of(name), info.offset, info.nbytes)
        else:
            try:
                weight = self._repack_quantized(info, rows)
            except UnsupportedModel as exc:  # say which tensor of which file
                raise UnsupportedModel(f"{self._gguf.path.name}: {name}: {exc}") from exc
        shift = gguf_config.norm_shift(name, self._arch)
        return weight.float() + shift if shift else weight

    def _repack_quantized(self, info: TensorInfo, rows: np.ndarray | None) -> Any:
        """Repacked ~16 MB of file at a time into the whole tensor's memory, each part's file pages dropped once
        read: a large tensor (the embedding: 145 MB in Qwen2.5-0.5B's Q4_0 file) never has all its pages resident
        beside its repacked copy, which was the load's peak."""
        n, k = info.shape
        if info.type_name == "Q5_K" and int5_kernel.reads_q5k_blocks() and rows is None:  # the file's own, mapped
            return gguf_repack.repack(self.raw(info.name), info.type_name, info.shape)
        row_bytes = info.nbytes // n
        step = n if rows is not None else max(1, REPACK_CHUNK_BYTES // row_bytes)  # a row order: one piece
        f, data = self._file_data(info.name)
        if step >= n:
            w = gguf_repack.repack(self.raw(info.name), info.type_name, info.shape, rows)
            _drop_pages(f, info.offset, info.nbytes)
            return w
        whole = gguf_repack.output_tensors(info.type_name, n, k)
        for r0 in range(0, n, step):
            r1 = min(n, r0 + step)
            start = info.offset + r0 * row_bytes
            w = gguf_repack.repack(data[start:start + (r1 - r0) * row_bytes], info.type_name, (r1 - r0, k),
                                   out=[t[r0:r1] for t in whole])
            _drop_pages(f, start, (r1 - r0) * row_bytes)
        return type(w)(n, k, *whole)

    def __contains__(self, hf: object) -> bool:  # Mapping's would repack the tensor to find out
        return hf in self._by_hf

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_hf)

    def __len__(self) -> int:
        return len(self._by_hf)


def _drop_pages(f: GgufFile, offset: int, nbytes: int) -> None:
    """Let the kernel reclaim the file pages of a tensor that was copied out: else every page the load read
    stays resident (and counts in the process's peak) until the map closes, besides the repacked copy. The range
    is widened to whole ``FOLIO_BYTES``: reading one page maps its whole page-cache folio, which reaches into the
    neighbouring tensors (after a plain read of the file, ext4 caches it in folios of up to 2 MB: 65 MB of
    Llama-3.2-1B's Q4_K_M file and 146 MB of Qwen2.5-3B's stayed mapped beside their repacked copies). A
    neighbour dropped before it is read maps its pages again from the page cache when it is. The map is private
    and never written, so a page read again later comes back from the file unchanged."""
    start = offset // FOLIO_BYTES * FOLIO_BYTES
    end = min(len(f.buffer()), -(-(offset + nbytes) // FOLIO_BYTES) * FOLIO_BYTES)  # the file's end: any length
    if end > start and hasattr(mmap, "MADV_DONTNEED"):
        try:
            f.buffer().madvise(mmap.MADV_DONTNEED, start, end - start)
        except (OSError, ValueError):  # advice only
            pass


def load_gguf(path: str | Path, on_progress: ProgressFn = lambda e: None, tokenizer: bool = True,
              lazy: bool = False) -> GgufModel:
    """Read ``path`` into a GgufModel (see the module docstring); UnsupportedModel when the loader cannot.
    ``lazy``: ``tensors`` is a ``GgufTensors`` (repacked when read) instead of a dict of repacked tensors."""
    started = time.perf_counter()
    path = Path(path)
    on_progress(ProgressEvent(f"Reading {path.name}", 0.0))
    gguf = open_gguf(path)
    meta = gguf.metadata
    arch = gguf_config.family(meta)
    names = gguf_config.text_tensors(gguf.tensors)
    unsupported = sorted({gguf.tensors[n].type_name for n in names} - set(gguf_repack.SUPPORTED))
    if unsupported:
        raise UnsupportedModel(f"{path.name} holds tensor types the GGUF loader does not read: {', '.join(unsupported)}"
                               f" (supported: {', '.join(gguf_repack.SUPPORTED)})")
    shapes = {name: t.shape for name, t in gguf.tensors.items()}

    def config_tensor(name: str) -> Any:
        if name not in gguf.tensors:
            return None
        info = gguf.tensors[name]
        return gguf_repack.dequantize(gguf_repack.repack(gguf.raw(name), info.type_name, info.shape)).numpy()

    try:
        config = gguf_config.hf_config(meta, shapes, config_tensor)
    except DamagedModel as exc:
        raise DamagedModel(f"{path.name}: {exc}") from exc
    read_s = time.perf_counter() - started
    lazy_tensors = GgufTensors(gguf, arch, config, names)
    types = {hf: lazy_tensors.source_type(hf) for hf in lazy_tensors}
    tensors: Mapping[str, Any] = lazy_tensors
    if not lazy:
        total = sum(lazy_tensors.nbytes(hf) for hf in lazy_tensors) or 1
        done = 0
        eager: dict[str, Any] = {}
        for hf in lazy_tensors:
            eager[hf] = lazy_tensors[hf]
            done += lazy_tensors.nbytes(hf)
            on_progress(ProgressEvent(f"Loading {path.name}", 0.9 * done / total))
        tensors = eager
    tensors_s = time.perf_counter() - started - read_s
    tok = None
    if tokenizer:
        from playground.engine.fast.gguf_tokenizer import build_tokenizer

        on_progress(ProgressEvent("Building the tokenizer", 0.95))
        try:
            with collector_paused():
                tok = build_tokenizer(meta)
        except DamagedModel as exc:
            raise DamagedModel(f"{path.name}: {exc}") from exc
    for f in getattr(gguf, "files", [gguf]):  # the metadata is read (vocabulary included): its pages can go
        _drop_pages(f, 0, f.data_start)
    timings = {"read_s": read_s, "tensors_s": tensors_s, "tokenizer_s": time.perf_counter() - started - read_s
               - tensors_s}
    on_progress(ProgressEvent(f"Read {path.name}", 1.0))
    return GgufModel(path, config, tensors, tok, types, timings, _eos_ids(meta))


def _eos_ids(meta: dict[str, Any]) -> frozenset[int]:
    """Tokens that end a turn: EOS, and the end-of-turn / end-of-message tokens chat models stop at."""
    keys = ("eos_token_id", "eot_token_id", "eom_token_id")
    return frozenset(int(meta[f"tokenizer.ggml.{k}"]) for k in keys if f"tokenizer.ggml.{k}" in meta)


def describe_file(path: str | Path) -> str:
    """One line on how ``path`` will load, from its header alone: read directly (architecture, tensor types) or
    through transformers' conversion (and why). DamagedModel when it cannot load at all (see ``open_gguf``)."""
    gguf = open_gguf(path)
    try:
        arch = gguf_config.family(gguf.metadata)
        gguf_config.hf_config(gguf.metadata, {name: t.shape for name, t in gguf.tensors.items()})  # its sizes
        text = gguf_config.text_tensors(gguf.tensors)
        kinds = sorted({gguf.tensors[name].type_name for name in text})
        unsupported = [k for k in kinds if k not in gguf_repack.SUPPORTED]
        if unsupported:
            raise UnsupportedModel(f"tensor types {', '.join(unsupported)} are not read directly")
        for name in text:
            gguf_config.hf_name(name, arch)
        vision = any(name.startswith(gguf_config.VISION_PREFIXES) for name in gguf.tensors)
    except DamagedModel as exc:
        raise DamagedModel(f"{Path(path).name}: {exc}") from exc
    except UnsupportedModel as exc:
        return f"loads through transformers' GGUF conversion (slower, once): {exc}"
    finally:
        gguf.close()
    left_out = " (its vision tower is left out: text only)" if vision else ""
    return f"loads directly: {arch}, {'/'.join(kinds)}{left_out}"
