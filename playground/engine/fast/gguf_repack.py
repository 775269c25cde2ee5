"""GGUF tensor data -> the engine's own weight formats, tensor by tensor, never through an fp32 copy of a tensor.

Block layouts (ggml's ``ggml-common.h`` and ``dequantize_row_*``; facts, not code). Rows are [out, in]; each row
is a run of blocks along ``in``:
- Q4_0 (32 weights, 18 bytes): fp16 d, 16 bytes of nibbles; byte j holds weight j (low) and j+16 (high);
  w = d * (q - 8). Q4_1 (20 bytes): fp16 d, fp16 m, the same nibbles; w = d * q + m.
- Q5_0 (22 bytes): fp16 d, 32 high bits (little-endian u32: bit j for weight j), nibbles as Q4_0;
  w = d * (q - 16). Q5_1 (24 bytes): d, m, then as Q5_0; w = d * q + m.
- Q8_0 (34 bytes): fp16 d, 32 int8; w = d * q.
- Q4_K (256 weights, 144 bytes): fp16 d, fp16 dmin, 12 bytes of packed 6-bit (scale, min) pairs for 8 sub-blocks
  of 32, 128 bytes of nibbles in 4 chunks of 32 bytes: chunk c holds sub-block 2c in the low nibbles and 2c+1 in
  the high ones; w = d * sc * q - dmin * m.
- Q5_K (176 bytes): d, dmin, the same 12 scale bytes, 32 bytes of high bits (bit s of byte l for weight l of
  sub-block s), 128 bytes of nibbles as Q4_K; w = d * sc * q - dmin * m with q in 0..31.
- Q6_K (210 bytes): 128 bytes of low nibbles, 64 of 2-bit highs, 16 int8 scales (one per 16 weights), fp16 d;
  w = d * scale * (q - 32).
- IQ4_NL (32 weights, 18 bytes): fp16 d, nibbles as Q4_0, each an index into a fixed table of 16 int8 values
  (``IQ4_VALUES``, non-linear); w = d * table[q]. IQ4_XS (256 weights, 136 bytes): fp16 d, a u16 of the 8
  sub-blocks' top 2 scale bits (2 each), 4 bytes of their low 4 bits (two a byte, low nibble first), then each
  32-weight sub-block's 16 bytes of nibbles as IQ4_NL; w = d * (scale - 32) * table[q].
- Q2_K and Q3_K (the Q2_K / Q3_K_* files' low-bit types) carry 2-bit values in 64 bytes: byte l of half h holds
  weight 128h + 32j + l in bits 2j..2j+1; a scale per 16 weights. Q2_K (84 bytes): 16 scale bytes first (low
  nibble the step, high the min), the values, fp16 d, fp16 dmin; w = d * step * q - dmin * min. Q3_K (110 bytes):
  32 bytes of high bits first (bit i of byte l for weight 32i + l; a set bit adds 4), the values, 12 bytes of 16
  6-bit scales (low nibbles: bytes 0-7, low then high nibble for scales 0-7 then 8-15; top 2 bits: scale 4k + i in
  bits 2k..2k+1 of byte 8 + i), fp16 d; w = d * (scale - 32) * (q - 4), q in 0..7.

Targets: Q4_0, Q4_1 and Q4_K -> ``Int4Weight`` exactly (group 32; fp16 scale and offset, Q4_K its own 6-bit codes
and d / dmin per 256 weights: kquant.py); Q8_0, Q5_0 and IQ4_NL -> ``Int8Group`` exactly (IQ4_XS:
each sub-block's d * scale rounded to fp16); Q5_1, Q5_K, Q6_K, Q2_K and Q3_K -> ``Int8Group`` re-quantized (the int8
scale of a group covers the largest value its blocks' scales allow, so no weight is clipped), except Q6_K where the
int6 kernel runs (AVX512-VNNI or AVX2): ``Int6Weight``, its values and scales as they are, and Q5_0, Q5_1 and
Q5_K where the int5 kernels run (AVX2, AVX512-VNNI): ``Int5Weight``, their
values as they are (exactly; Q5_K with its own parameters, as Q4_K);
F32/F16/BF16 -> torch tensors viewing the file's memory map. A scale or offset past fp16's range (a damaged file)
is refused, naming the type.

Speed: a load is bound by memory traffic, so the bit work runs on 64-bit words (eight bytes per operation), a
chunk of rows at a time (cache-sized temporaries, reused), on a thread per core (numpy releases the GIL), into
outputs allocated by numpy (which asks Linux for huge pages: fresh 4 KiB pages cost ~10 µs each to fault in on
a VM, several times the copy itself).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from playground.engine.fast import int5_kernel, int6_kernel, kernels, kquant
from playground.engine.fast.int4_kernel import Int4Weight
from playground.engine.fast.int5_kernel import Int5Weight
from playground.engine.fast.int6_kernel import Int6Weight
from playground.engine.fast.quant import Int8Group
from playground.errors import UnsupportedModel

if TYPE_CHECKING:
    import torch

# ggml type name -> (weights per block, bytes per block)
BLOCKS = {"Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22), "Q5_1": (32, 24), "Q8_0": (32, 34),
          "Q2_K": (256, 84), "Q3_K": (256, 110), "Q4_K": (256, 144), "Q5_K": (256, 176), "Q6_K": (256, 210),
          "IQ4_NL": (32, 18), "IQ4_XS": (256, 136)}
# IQ4_NL / IQ4_XS: the int8 value each 4-bit index stands for (ggml's kvalues_iq4nl)
IQ4_VALUES = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], dtype=np.int8)
FLOATS = ("F32", "F16", "BF16")
SUPPORTED = (*FLOATS, *BLOCKS)
CHUNK = 1 << 20  # weights per chunk of rows (measured: 1M beats 256K and 64K)

Weight = Any  # Int4Weight | Int5Weight | Int6Weight | Int8Group | torch.Tensor
_U64 = np.uint64
_M0F, _MF0 = _U64(0x0F0F0F0F0F0F0F0F), _U64(0xF0F0F0F0F0F0F0F0)
_M01, _M03 = _U64(0x0101010101010101), _U64(0x0303030303030303)
_pool: ThreadPoolExecutor | None = None


def repack(raw: np.ndarray, type_name: str, shape: tuple[int, ...], rows: np.ndarray | None = None,
           native: bool | None = None, out: list[torch.Tensor] | None = None) -> Weight:
    """The tensor whose file bytes are ``raw`` (uint8, 1-D) as the engine stores it; ``rows`` reorders rows first
    (undoing a row permutation of the converter: row i of the result is row ``rows[i]`` of the file's).
    ``native``: the types in ``_NATIVE`` through the compiled repack when the kernel library is loaded (None,
    the default), or never (False: the numpy path, which the tests compare it with).
    ``out``: the result's tensors (``output_tensors``), written in place by the compiled repack (else filled by a
    copy)."""
    import torch

    if type_name in FLOATS:
        view = raw.view(np.float32 if type_name == "F32" else np.int16).reshape(shape)
        if rows is not None:
            view = view[rows]
        t = torch.from_numpy(view)
        return t.view({"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[type_name])
    if type_name not in BLOCKS:
        raise UnsupportedModel(f"tensor type {type_name} is not supported (supported: {', '.join(SUPPORTED)})")
    if len(shape) != 2:
        raise UnsupportedModel(f"a {type_name} tensor of shape {shape}: only 2-D quantized tensors are supported")
    n, k = shape
    per, size = BLOCKS[type_name]
    blocks = raw.reshape(n, k // per, size)
    if rows is not None:  # torch's gather runs on every core (numpy's fancy index on one)
        blocks = torch.from_numpy(blocks.reshape(n, -1)).index_select(0, torch.from_numpy(np.asarray(rows, np.int64)))
        blocks = blocks.numpy().reshape(n, k // per, size)
    groups = k // 32
    if native is not False and type_name == "Q5_K" and int5_kernel.reads_q5k_blocks():
        params = kernels.op("q5_k_params")(torch.from_numpy(np.ascontiguousarray(blocks)))  # the values: as they lie
        _require_finite(_param_halves(params.numpy()), type_name, "scales")
        return Int5Weight(n, k, torch.from_numpy(blocks.reshape(n, -1)), params, torch.empty(0, dtype=torch.float16))
    if native is not False and type_name in _INT5 and int5_kernel.runs_here():
        made = kernels.op(_INT5[type_name])(torch.from_numpy(np.ascontiguousarray(blocks)), out or [])
        _require_finite(_param_halves(made[1].numpy()), type_name, "scales")
        _require_finite(made[2].numpy(), type_name, "offsets")
        return Int5Weight(n, k, *made)
    if native is not False and type_name == "Q6_K" and int6_kernel.runs_here():
        made = kernels.op("repack_q6_k_int6")(torch.from_numpy(np.ascontiguousarray(blocks)), out or [])
        _require_finite(kquant.halves(made[1].numpy(), kquant.INT6_BYTES), type_name, "scales")
        return Int6Weight(n, k, *made)
    if native is not False and type_name in _NATIVE and _native_ok():
        made = kernels.op(_NATIVE[type_name])(torch.from_numpy(np.ascontiguousarray(blocks)), out or [])
        _require_finite(_param_halves(made[1].numpy()), type_name, "scales")
        if type_name not in ("Q4_0", "Q4_1", "Q4_K"):
            return Int8Group(n, k, *made)
        _require_finite(made[2].numpy(), type_name, "offsets")
        return Int4Weight(n, k, *made)
    if out is not None:  # the numpy repack allocates its own: copied into the given tensors
        w = repack(raw, type_name, shape, rows, native=False)
        for dst, src in zip(out, w.segment(), strict=False):
            if src.numel():
                dst.copy_(src)
        return w
    if type_name in ("Q4_0", "Q4_1", "Q4_K"):
        # Q4_0 is symmetric: no offsets (-8 * scale, implied; a tenth less to read per decoded token)
        (qshape, _), (sshape, sdtype), (oshape, _) = _layout(type_name, n, k)
        q, scales = np.empty(qshape, np.uint8), np.empty(sshape, sdtype)
        offsets = np.empty(oshape if len(oshape) == 2 else (n, 0), np.float16)
        _chunked(n, k, lambda s, e: _INT4[type_name](blocks[s:e], q[s:e], scales[s:e], offsets[s:e]))
        _require_finite(_param_halves(scales), type_name, "scales")
        _require_finite(offsets, type_name, "offsets")
        offsets_t = torch.from_numpy(offsets.reshape(-1) if len(oshape) == 1 else offsets)  # Q4_0's, Q4_K's: empty
        return Int4Weight(n, k, torch.from_numpy(q), torch.from_numpy(scales), offsets_t)
    q8, scales = np.empty((n, k), np.int8), np.empty((n, groups), np.float16)
    _chunked(n, k, lambda s, e: _INT8[type_name](blocks[s:e], q8[s:e], scales[s:e]))
    _require_finite(scales, type_name, "scales")
    return Int8Group(n, k, torch.from_numpy(q8), torch.from_numpy(scales))


def _require_finite(halves: np.ndarray, type_name: str, what: str) -> None:
    """UnsupportedModel unless every fp16 value is finite (an inf or NaN has all exponent bits set), read in one
    pass: the library's on every core, else numpy's on one (torch's isfinite on fp16 took ~1-15 ms a tensor, ~0.4-2
    s of a 1B model's load)."""
    if halves.size and _nonfinite(halves.view(np.int16)):
        raise UnsupportedModel(f"its {type_name} {what} are not all finite (a NaN, or past fp16's range): "
                               f"the file is damaged or was written wrong")


def _nonfinite(bits: np.ndarray) -> bool:
    """Whether any of these fp16 values (as int16, 1-D or 2-D, any strides) has all its exponent bits set."""
    import torch

    if kernels.available():
        return bool(kernels.op("nonfinite_halves")(torch.from_numpy(bits)))
    return int((bits.view(np.uint16) & np.uint16(0x7C00)).max()) == 0x7C00


def _param_halves(scales: np.ndarray) -> np.ndarray:
    """The fp16 values among a repacked weight's scales: all of them, or K-quant parameters' d and dmin."""
    return kquant.halves(scales) if scales.dtype == np.uint8 else scales


def repacked_nbytes(type_name: str, shape: tuple[int, ...]) -> int:
    """Bytes a load holds of a tensor once ``repack`` has made it (a float tensor: its own size, as mapped)."""
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if type_name in FLOATS or type_name not in BLOCKS or len(shape) != 2:
        return count * {"F32": 4}.get(type_name, 2)
    return sum(int(np.prod(dims, dtype=np.int64)) * np.dtype(dtype).itemsize
               for dims, dtype in _layout(type_name, *shape))


def output_tensors(type_name: str, n: int, k: int) -> list[torch.Tensor]:
    """Empty tensors of what ``repack`` makes of an [n, k] ``type_name`` tensor (``_layout``)."""
    import torch

    return [torch.empty(dims, dtype=getattr(torch, dtype)) for dims, dtype in _layout(type_name, n, k)]


def _layout(type_name: str, n: int, k: int) -> list[tuple[tuple[int, ...], str]]:
    """(shape, dtype) of each tensor ``repack`` makes of an [n, k] ``type_name`` tensor: int4 (qweight, scales,
    offsets: none for the symmetric Q4_0; Q4_K: its own parameters, kquant.py, in place of both), int5 (the same,
    Q5_0 symmetric, Q5_K's own parameters), int6 (qweight, Q6_K's own parameters) or int8 (qweight, scales)."""
    groups = k // 32
    params = [((n, kquant.row_bytes(k)), "uint8"), ((0,), "float16")]  # Q4_K, Q5_K
    if type_name in _INT5 and int5_kernel.runs_here():
        return [((n, int5_kernel.row_bytes(k)), "uint8"), *(params if type_name == "Q5_K" else [
            ((n, groups), "float16"), ((0,) if type_name == "Q5_0" else (n, groups), "float16")])]
    if type_name == "Q6_K" and int6_kernel.runs_here():
        return [((n, k // 4 * 3), "uint8"), ((n, k // 256 * kquant.INT6_BYTES), "uint8")]
    if type_name in ("Q4_0", "Q4_1", "Q4_K"):
        return [((n, k // 2), "uint8"), *(params if type_name == "Q4_K" else [
            ((n, groups), "float16"), ((0,) if type_name == "Q4_0" else (n, groups), "float16")])]
    return [((n, k), "int8"), ((n, groups), "float16")]


def dequantize(w: Weight) -> torch.Tensor:
    """The fp32 tensor a loaded weight stands for (``int4_kernel.dequantize``'s values, ~10x faster)."""
    import torch

    if isinstance(w, Int4Weight):
        words = w.qweight.numpy().view(_U64).reshape(w.n, w.k // 32, 2)
        q = np.concatenate([words & _M0F, (words >> _U64(4)) & _M0F], axis=-1).view(np.uint8)
        out = torch.addcmul(w.offset_values().float().unsqueeze(-1), torch.from_numpy(q),
                            w.scale_values().float().unsqueeze(-1))
        return out.reshape(w.n, w.k)
    if isinstance(w, Int8Group):
        from playground.engine.fast.int8_kernel import dequantize as int8_dequantize

        return int8_dequantize(w.qweight, w.scales)
    if isinstance(w, Int6Weight):
        return int6_kernel.dequantize(w)
    if isinstance(w, Int5Weight):
        return int5_kernel.dequantize(w)
    return w.float()


def _chunked(n: int, k: int, work: Callable[[int, int], None]) -> None:
    """``work(start, stop)`` over chunks of rows, on a thread per core when there is more than one chunk."""
    global _pool
    step = max(1, CHUNK // k)
    spans = [(s, min(n, s + step)) for s in range(0, n, step)]
    threads = min(len(spans), os.cpu_count() or 1)
    if threads <= 1:
        for s, e in spans:
            work(s, e)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="gguf-repack")
    for future in [_pool.submit(work, s, e) for s, e in spans]:
        future.result()


def _words(blocks: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Bytes start..stop of every block as contiguous little-endian uint64 words [rows, blocks, (stop-start)/8]."""
    return np.ascontiguousarray(blocks[..., start:stop]).view(_U64)


def _half(blocks: np.ndarray, at: int) -> np.ndarray:
    """The fp16 at byte ``at`` of every block, as float32 [rows, blocks]."""
    return np.ascontiguousarray(blocks[..., at:at + 2]).view(np.float16)[..., 0].astype(np.float32)


def _high_bits(blocks: np.ndarray, at: int) -> np.ndarray:
    """Q5_0/Q5_1: the 32 high bits at byte ``at`` as 0/1 bytes in weight order, viewed as 4 uint64 words."""
    bits = np.unpackbits(np.ascontiguousarray(blocks[..., at:at + 4]), axis=-1, bitorder="little")
    return bits.view(_U64)


# ---------------------------------------------------------------- 4-bit -> Int4Weight ------------------------------


def _q4_0(b: np.ndarray, q: np.ndarray, scales: np.ndarray, offsets: np.ndarray) -> None:
    # The nibbles are already Int4Weight's packing (byte j: weight j low, weight j + 16 high).
    r = b.shape[0]
    q.view(np.uint16).reshape(r, -1, 8)[:] = b.view(np.uint16)[..., 1:]  # 16-bit words: half the elements
    scales[:] = _half(b, 0)  # offsets: none (symmetric)


def _q4_1(b: np.ndarray, q: np.ndarray, scales: np.ndarray, offsets: np.ndarray) -> None:
    r = b.shape[0]
    q.view(np.uint32).reshape(r, -1, 4)[:] = b.view(np.uint32)[..., 1:]
    scales[:] = _half(b, 0)
    offsets[:] = _half(b, 2)


def _k_scales(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_K/Q5_K: the 8 (scale, min) 6-bit pairs of each block from bytes 4..15, as float32 [rows, blocks, 8]."""
    s = b[..., 4:16]
    sc = np.concatenate([s[..., 0:4] & 63, (s[..., 8:12] & 15) | ((s[..., 0:4] >> 6) << 4)], axis=-1)
    m = np.concatenate([s[..., 4:8] & 63, (s[..., 8:12] >> 4) | ((s[..., 4:8] >> 6) << 4)], axis=-1)
    return sc.astype(np.float32), m.astype(np.float32)


def _q4_k(b: np.ndarray, q: np.ndarray, params: np.ndarray, offsets: np.ndarray) -> None:
    r, nb = b.shape[:2]
    sc, m = _k_scales(b)  # the block's own parameters (kquant.py): codes, then d and dmin as stored
    p = params.reshape(r, nb, kquant.SUPER_BYTES)
    p[..., :8], p[..., 8:16], p[..., 16:20] = sc, m, b[..., 0:4]
    qs = _words(b, 16, 144).reshape(r, nb, 4, 2, 2)  # [chunk, bytes 0-15 | 16-31, word]
    a, hi = qs[..., 0, :], qs[..., 1, :]
    out = q.view(_U64).reshape(r, nb, 4, 2, 2)  # [chunk, sub-block 2c | 2c+1, word]
    out[..., 0, :] = (a & _M0F) | ((hi & _M0F) << _U64(4))
    out[..., 1, :] = ((a >> _U64(4)) & _M0F) | (hi & _MF0)


# ---------------------------------------------------------------- 5-, 6-, 8-bit -> Int8Group ----------------------


def _q8_0(b: np.ndarray, q8: np.ndarray, scales: np.ndarray) -> None:
    r = b.shape[0]
    q8.view(np.uint16).reshape(r, -1, 16)[:] = b.view(np.uint16)[..., 1:]
    scales[:] = _half(b, 0)


def _five_bit_words(b: np.ndarray, high_at: int, nib_at: int) -> tuple[np.ndarray, np.ndarray]:
    """Q5_0/Q5_1: (low nibbles, high bit << 4) of the 32 weights, each as 4 uint64 words per block."""
    nib = _words(b, nib_at, nib_at + 16)
    low = np.concatenate([nib & _M0F, (nib >> _U64(4)) & _M0F], axis=-1)
    return low, _high_bits(b, high_at) << _U64(4)


def _q5_0(b: np.ndarray, q8: np.ndarray, scales: np.ndarray) -> None:
    # q - 16 as a signed byte: the nibble when the high bit is set, else the nibble | 0xF0 (two's complement).
    r, nb = b.shape[:2]
    low, high = _five_bit_words(b, 2, 6)
    q8.view(_U64).reshape(r, nb, 4)[:] = low | ((high ^ (_M01 << _U64(4))) * _U64(15))
    scales[:] = _half(b, 0)


def _requantize(q: np.ndarray, step: np.ndarray, base: np.ndarray, bound: np.ndarray, q8: np.ndarray,
                scales: np.ndarray) -> None:
    """Int8 of values ``q * step + base`` (q uint8 [r, groups, G, n]; step, base [r, groups, G, 1]) with each group's
    scale = its ``bound`` (the largest |value| its block scales allow) / 127 in fp16: |error| <= scale / 2."""
    import torch

    s16 = np.maximum(bound / 127, 2.0**-24).astype(np.float16)
    inv = 1 / s16.astype(np.float32)
    inv = inv.reshape(*inv.shape, *([1] * (step.ndim - inv.ndim)))
    # torch: its broadcasting over runs of 16-32 weights is ~2x numpy's
    vals = torch.addcmul(torch.from_numpy(base * inv), torch.from_numpy(q), torch.from_numpy(step * inv))
    torch.from_numpy(q8).copy_(vals.round_().clamp_(-127, 127).reshape(q8.shape))
    scales[:] = s16.reshape(scales.shape)


def _q5_1(b: np.ndarray, q8: np.ndarray, scales: np.ndarray) -> None:
    r, nb = b.shape[:2]
    low, high = _five_bit_words(b, 4, 8)
    q = (low | high).view(np.uint8).reshape(r, nb, 1, 32)
    d, m = _half(b, 0)[..., None, None], _half(b, 2)[..., None, None]
    bound = np.maximum(np.abs(m), np.abs(d * 31 + m))[..., 0, 0]
    _requantize(q, d, m, bound, q8, scales)


def _q5_k(b: np.ndarray, q8: np.ndarray, scales: np.ndarray) -> None:
    r, nb = b.shape[:2]
    sc, m = _k_scales(b)
    step, base = _half(b, 0)[..., None] * sc, -(_half(b, 2)[..., None] * m)  # [r, nb, 8] per sub-block
    qh = _words(b, 16, 48)[..., None, :]  # [r, nb, 1, 4]: bit s of byte l -> weight l of sub-block s
    high = ((qh >> np.arange(8, dtype=_U64)[:, None]) & _M01) << _U64(4)  # [r, nb, 8, 4]
    qs = _words(b, 48, 176).reshape(r, nb, 4, 1, 4)
    low = np.concatenate([qs & _M0F, (qs >> _U64(4)) & _M0F], axis=3).reshape(r, nb, 8, 4)
    q = (low | high).view(np.uint8).reshape(r, nb, 8, 32)
    bound = np.maximum(np.abs(base), np.abs(step * 31 + base))
    _requantize(q, step[..., None], base[..., None], bound, q8, scales)


_Q6_SHIFTS = np.array([0, 2, 4, 6], dtype=_U64).reshape(1, 1, 1, 4, 1)


def _q6_k(b: np.ndarray, q8: np.ndarray, scales: np.ndarray) -> None:
    r, nb = b.shape[:2]
    w = _words(b, 0, 192)
    ql = w[..., :16].reshape(r, nb, 2, 2, 4)  # [half, bytes 0-31 | 32-63, word]
    qh = w[..., 16:].reshape(r, nb, 2, 1, 4)
    # Per half: weights 0-31 (low nibbles of bytes 0-31), 32-63 (low, 32-63), 64-95 (high, 0-31), 96-127.
    low = np.concatenate([ql & _M0F, (ql >> _U64(4)) & _M0F], axis=3)
    q = (low | (((qh >> _Q6_SHIFTS) & _M03) << _U64(4))).view(np.uint8).reshape(r, nb * 8, 2, 16)
    step = (b[..., 192:208].view(np.int8).astype(np.float32) * _half(b, 208)[..., None]).reshape(r, nb * 8, 2, 1)
    bound = np.maximum(np.abs(step[:, :, 0, 0]), np.abs(step[:, :, 1, 0])) * 32  # q - 32 spans -32..31
    _requantize(q, step, step * -32, bound, q8, scales)


def _iq4_values(nibble_bytes: np.ndarray) -> np.ndarray:
    """16-byte runs of IQ4 nibbles [..., 16] as their table values, int8 [..., 32] in weight order."""
    both = np.concatenate([nibble_bytes & np.uint8(15), nibble_bytes >> np.uint8(4)], axis=-1)
    return IQ4_VALUES[both]


def _iq4_nl(b: np.ndarray, q8: np.ndarray, scales: np.ndarray) -> None:
    q8.reshape(b.shape[0], -1, 32)[:] = _iq4_values(b[..., 2:18])
    scales[:] = _half(b, 0)


def _iq4_xs(b: np.ndarray, q8: np.ndarray, scales: np.ndarray) -> None:
    r, nb = b.shape[:2]
    q8.reshape(r, nb, 8, 32)[:] = _iq4_values(b[..., 8:136].reshape(r, nb, 8, 16))
    low = np.stack([b[..., 4:8] & np.uint8(15), b[..., 4:8] >> np.uint8(4)], axis=-1).reshape(r, nb, 8)
    high = (np.ascontiguousarray(b[..., 2:4]).view(np.uint16) >> (2 * np.arange(8, dtype=np.uint16))) & 3
    sub = (low | (high.astype(np.uint8) << np.uint8(4))).astype(np.float32) - 32
    with np.errstate(over="ignore"):  # an fp16 overflow shows as inf: the caller checks
        scales[:] = (_half(b, 0)[..., None] * sub).astype(np.float16).reshape(r, nb * 8)


_TWO_BIT_SHIFTS = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 1, 4, 1)


def _two_bit_values(b: np.ndarray, at: int) -> np.ndarray:
    """Q2_K/Q3_K: the 2-bit values in the 64 bytes at ``at``, uint8 [rows, blocks, 256] in weight order."""
    r, nb = b.shape[:2]
    qs = np.ascontiguousarray(b[..., at:at + 64]).reshape(r, nb, 2, 1, 32)
    return ((qs >> _TWO_BIT_SHIFTS) & np.uint8(3)).reshape(r, nb, 256)


def _runs(per_16: np.ndarray) -> np.ndarray:
    """[rows, blocks, 16] per-16-weight factors as ``_requantize``'s [rows, groups, 2, 1] (a group: two runs)."""
    r, nb = per_16.shape[:2]
    return per_16.reshape(r, nb * 8, 2, 1)


def _q2_k(b: np.ndarray, q8: np.ndarray, scales: np.ndarray) -> None:
    r, nb = b.shape[:2]
    sc = b[..., 0:16]
    step = _runs(_half(b, 80)[..., None] * (sc & np.uint8(15)))
    base = _runs(-(_half(b, 82)[..., None] * (sc >> np.uint8(4))))
    bound = np.maximum(np.abs(base), np.abs(step * 3 + base)).max(axis=(2, 3))
    _requantize(_two_bit_values(b, 16).reshape(r, nb * 8, 2, 16), step, base, bound, q8, scales)


def _q3_k_scales(b: np.ndarray) -> np.ndarray:
    """Q3_K: the 16 signed scales (6-bit, minus 32) of each block, as float32 [rows, blocks, 16]."""
    low = np.concatenate([b[..., 96:104] & np.uint8(15), b[..., 96:104] >> np.uint8(4)], axis=-1)
    top = (b[..., None, 104:108] >> (2 * np.arange(4, dtype=np.uint8))[:, None]) & np.uint8(3)  # [.., k, i]
    six = low | (top.reshape(*b.shape[:2], 16) << np.uint8(4))
    return six.astype(np.float32) - 32


def _q3_k(b: np.ndarray, q8: np.ndarray, scales: np.ndarray) -> None:
    r, nb = b.shape[:2]
    hm = np.ascontiguousarray(b[..., 0:32]).reshape(r, nb, 1, 32)
    high = ((hm >> np.arange(8, dtype=np.uint8)[:, None]) & np.uint8(1)).reshape(r, nb, 256)
    q = (_two_bit_values(b, 32) | (high << np.uint8(2))).reshape(r, nb * 8, 2, 16)
    step = _runs(_half(b, 108)[..., None] * _q3_k_scales(b))
    bound = (np.abs(step) * 4).max(axis=(2, 3))  # q - 4 spans -4..3
    _requantize(q, step, step * -4, bound, q8, scales)


# csrc/gguf_repack.cpp and gguf_int8.cpp: every type above but Q5_1 (rare: numpy's repack)
_NATIVE = {name: f"repack_{name.lower()}" for name in ("Q4_0", "Q4_1", "Q4_K", "Q5_0", "Q8_0", "Q6_K", "Q5_K",
                                                        "Q2_K", "Q3_K", "IQ4_NL", "IQ4_XS")}


_INT5 = {name: f"repack_{name.lower()}_int5" for name in ("Q5_0", "Q5_1", "Q5_K")}  # where int5_kernel runs


def _native_ok() -> bool:
    return kernels.available()


_INT4 = {"Q4_0": _q4_0, "Q4_1": _q4_1, "Q4_K": _q4_k}
_INT8 = {"Q8_0": _q8_0, "Q5_0": _q5_0, "Q5_1": _q5_1, "Q5_K": _q5_k, "Q6_K": _q6_k, "Q2_K": _q2_k, "Q3_K": _q3_k,
         "IQ4_NL": _iq4_nl, "IQ4_XS": _iq4_xs}
