"""Weight-only int4 matmul for CPU decode: a C++ SIMD kernel built on first use, with a stock-torch fallback.

Quantization: asymmetric, per group of ``GROUP`` (32) weights along K: ``w ≈ q * scale + offset`` with q in 0..15,
``offset`` the group's min and ``scale = (max - min) / 15`` (at least ``MIN_SCALE``), both stored as fp16 (5 bits
per weight in all instead of 6 with fp32: decode is bound by weight bytes). Packed layout (what the kernel reads):
``qweight`` uint8 [N, K/2], per row group-major, byte j of group g holds q[32g + j] in its low nibble and
q[32g + 16 + j] in its high one; ``scales`` and ``offsets`` fp16 [N, K/32].

The kernel (``csrc/int4_gemv.cpp``, op ``torch.ops.playground.int4_gemv``) reads each weight once per call for
up to 8 rows of x, splits rows over torch's thread pool, and picks AVX-512 / AVX2 / scalar code at run time.
Activations, per call (``matmul(..., int8_activations=)``, default ``$PLAYGROUND_INT4_ACTIVATIONS``, else fp32):
- fp32 (default): x stays fp32, so results match ``x @ dequantize(w).T`` up to float rounding (~1e-7 relative);
- int8: x quantized per group of 32 to int8 (like llama.cpp's q8), integer dot products (VNNI where the CPU has
  it): less compute, ~1e-2 relative error on random data (``quantize_activations`` shows what it multiplies by).

Build: torch's C++ extension machinery (ninja + the C++ compiler), the first time ``available()`` or ``matmul`` is
called, into ``paths.data_dir() / "kernels" / int4_gemv-<hash of source, flags, torch, Python>``
(``$PLAYGROUND_KERNEL_CACHE`` overrides the folder); later processes load that library directly (milliseconds).
Concurrent builds are serialised by torch's lock file in the build folder.

Fallback (no compiler or ninja, failed build, non-x86 CPU, ``PLAYGROUND_INT4_KERNEL=0``, non-fp32 or non-CPU x):
stock torch, dequantizing a chunk of rows at a time (about 1 MiB of fp32) into ``F.linear``; it computes the same
activation mode as the kernel would, so the two agree up to float rounding.

Environment: ``PLAYGROUND_INT4_KERNEL=0`` forces the fallback (read at every call); ``PLAYGROUND_INT4_ACTIVATIONS``
(fp32 or int8); ``PLAYGROUND_KERNEL_CACHE`` sets the build folder; ``PLAYGROUND_KERNEL_VERBOSE=1`` shows the
compiler output. Under ``torch.compile`` the kernel-or-fallback and activation choices are fixed at trace time.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

GROUP = 32
MIN_SCALE = 2.0**-24  # a constant group's scale (fp16's smallest), so quantize never divides by zero
MAX_ABS = 65000.0  # fp16 scales and offsets: larger weights are refused
ENV_ENABLE = "PLAYGROUND_INT4_KERNEL"
ENV_CACHE = "PLAYGROUND_KERNEL_CACHE"
ENV_VERBOSE = "PLAYGROUND_KERNEL_VERBOSE"
ENV_ACTIVATIONS = "PLAYGROUND_INT4_ACTIVATIONS"
OP_NAME = "playground::int4_gemv"

_CFLAGS = ["-O3", "-fno-math-errno"]  # AVX2/FMA via target attributes, chosen at run time
_FALLBACK_CHUNK = 1 << 18  # weights dequantized at a time by the fallback (1 MiB of fp32)
_STALE_LOCK_S = 600  # a build lock older than this was left by a killed build
_PRUNE_AFTER_S = 14 * 24 * 3600  # other versions' builds unused this long are deleted after a build


@dataclass
class Int4Weight:
    """A quantized [n, k] weight; all payload is in torch tensors (see the module docstring for the layout)."""

    n: int
    k: int
    qweight: torch.Tensor  # uint8 [n, k // 2]
    scales: torch.Tensor  # float16 [n, k // GROUP]
    offsets: torch.Tensor  # float16 [n, k // GROUP]

    def to(self, device: Any) -> Int4Weight:
        """The same weight on another device (the kernel runs on CPU; other devices use the fallback)."""
        return Int4Weight(self.n, self.k, self.qweight.to(device), self.scales.to(device), self.offsets.to(device))

    def tensors(self) -> dict[str, torch.Tensor]:
        """The payload by name (state_dict-style)."""
        return {"qweight": self.qweight, "scales": self.scales, "offsets": self.offsets}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> Int4Weight:
        q = tensors["qweight"]
        return cls(int(q.shape[0]), int(q.shape[1]) * 2, q, tensors["scales"], tensors["offsets"])

    @property
    def nbytes(self) -> int:
        """Bytes a matmul reads from the weight."""
        return sum(t.numel() * t.element_size() for t in self.tensors().values())


# ---------------------------------------------------------------- quantization -------------------------------------


def _round_half(x: torch.Tensor, up: bool) -> torch.Tensor:
    """fp32 -> fp16, rounded up (or down) so the result is >= (or <=) x."""
    import torch

    h = x.to(torch.float16)
    off = h.float() < x if up else h.float() > x
    return torch.where(off, torch.nextafter(h, torch.full_like(h, float("inf") if up else float("-inf"))), h)


def quantize(weight: torch.Tensor) -> Int4Weight:
    """Quantize an [N, K] weight (K a multiple of 32) to asymmetric per-group int4.

    Scale and offset come from the group's min/max and are stored as fp16: the offset rounded down, the scale up
    (so the group's range still fits 0..15), q chosen against the stored values: |w - dequantized| <= scale / 2.
    """
    import torch

    if weight.dim() != 2 or weight.shape[1] % GROUP:
        raise ValueError(f"quantize wants [N, K] with K a multiple of {GROUP}, got {tuple(weight.shape)}")
    n, k = (int(s) for s in weight.shape)
    g = weight.detach().to(torch.float32).reshape(n, k // GROUP, GROUP)
    lo32, hi32 = g.amin(dim=-1), g.amax(dim=-1)
    if n * k and not (bool(torch.isfinite(lo32).all()) and bool(torch.isfinite(hi32).all())
                      and max(-float(lo32.min()), float(hi32.max())) <= MAX_ABS):
        raise ValueError(f"quantize: weights must be finite with |w| <= {MAX_ABS:g} (fp16 scales and offsets)")
    lo = _round_half(lo32, up=False)
    scale = _round_half(((hi32 - lo.float()) / 15).clamp_min(MIN_SCALE), up=True)
    q = torch.round((g - lo.float().unsqueeze(-1)) / scale.float().unsqueeze(-1)).clamp_(0, 15).to(torch.uint8)
    packed = q[..., : GROUP // 2] | (q[..., GROUP // 2 :] << 4)
    return Int4Weight(n, k, packed.reshape(n, k // 2).contiguous(), scale.contiguous(), lo.contiguous())


def _dequantize_rows(w: Int4Weight, start: int, stop: int, dtype: torch.dtype | None = None,
                     offsets: bool = True) -> torch.Tensor:
    """Rows start..stop of the fp32 weight (``offsets=False``: just q * scale)."""
    import torch

    packed = w.qweight[start:stop].reshape(stop - start, w.k // GROUP, GROUP // 2)
    q = torch.cat([packed & 15, packed >> 4], dim=-1).to(torch.float32)
    out = q * w.scales[start:stop].float().unsqueeze(-1)
    if offsets:
        out = out + w.offsets[start:stop].float().unsqueeze(-1)
    out = out.reshape(stop - start, w.k)
    return out if dtype is None else out.to(dtype)


def dequantize(w: Int4Weight) -> torch.Tensor:
    """The fp32 [N, K] weight the kernel multiplies by."""
    return _dequantize_rows(w, 0, w.n)


# ---------------------------------------------------------------- build and load -----------------------------------

_lock = threading.Lock()
_state: dict[str, Any] = {"loaded": None, "reason": None, "build_s": None, "load_s": None, "library": None, "op": None}
_fake_registered = False


def _env_disabled() -> bool:
    return (os.environ.get(ENV_ENABLE) or "").strip().lower() in ("0", "false", "no", "off")


def _source_text() -> str:
    from importlib import resources

    return resources.files(__package__).joinpath("csrc", "int4_gemv.cpp").read_text(encoding="utf-8")


def source_digest() -> str:
    """sha256 of the kernel's C++ source: what a prepared build or stored int4 weights were made from."""
    return hashlib.sha256(_source_text().encode()).hexdigest()


def _cache_root() -> Path:
    override = os.environ.get(ENV_CACHE)
    if override:
        return Path(override).expanduser()
    from playground import paths

    return paths.data_dir() / "kernels"


def _first_error_line(message: str) -> str:
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() and not line.startswith("Error building extension"):
            return line[:300]
    return lines[0][:300] if lines else "unknown error"


def _build_flags() -> tuple[list[str], list[str]]:
    """Compiler and linker flags. at::parallel_for is header code: without -fopenmp its ``#pragma omp parallel``
    is ignored and the kernel runs on one thread. With GCC on Linux, -fopenmp links ``libgomp.so.1``, which
    resolves to the libgomp torch already loaded (same soname), so there is one OpenMP thread pool; clang would
    bring its own runtime, so it (and other platforms) builds without and runs single-threaded."""
    import shutil

    import torch

    compiler = shutil.which(os.environ.get("CXX", "c++").split()[0]) or ""
    gcc = "clang" not in os.path.basename(os.path.realpath(compiler)) if compiler else False
    if sys.platform.startswith("linux") and gcc and "parallel backend: OpenMP" in torch.__config__.parallel_info():
        return [*_CFLAGS, "-fopenmp"], ["-fopenmp"]
    return list(_CFLAGS), []


def _load() -> tuple[bool, str | None]:
    """Load the cached kernel, building it first if needed. Returns (ok, reason when not)."""
    import torch

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False, f"no int4 kernel for {platform.machine()} CPUs (x86-64 with AVX2 only)"
    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in ("AVX2", "AVX512"):
        return False, f"CPU lacks AVX2/FMA (torch reports {capability})"
    try:
        source = _source_text()
    except OSError as exc:
        return False, f"kernel source missing: {exc}"

    cflags, ldflags = _build_flags()
    key_text = "\n".join([source, " ".join(cflags + ldflags), torch.__version__, sys.version.split()[0], sys.platform])
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    name = f"playground_int4_{key}"
    build_dir = _cache_root() / f"int4_gemv-{key}"
    library = build_dir / f"{name}{'.pyd' if sys.platform == 'win32' else '.so'}"
    done = build_dir / "built.ok"  # written after a successful build, so a half-written library is never loaded

    start = time.perf_counter()
    if library.exists() and done.exists():
        try:
            torch.ops.load_library(str(library))
        except Exception as exc:  # a corrupt cache: fall through and rebuild
            done.unlink(missing_ok=True)
            _state["cache_error"] = _first_error_line(str(exc))
        else:
            _state.update(load_s=time.perf_counter() - start, library=str(library))
            try:
                os.utime(done)  # "last used", for _prune_old_builds
            except OSError:
                pass
            return True, None

    import shutil

    compiler = os.environ.get("CXX", "c++").split()[0]
    if not shutil.which(compiler):
        return False, f"no C++ compiler ({compiler}) on PATH"
    if not shutil.which("ninja"):
        # The ``ninja`` wheel puts its binary next to the interpreter; a venv used without activating it
        # (scripts/run calls .venv/bin/python) does not have that folder on PATH.
        venv_bin = str(Path(sys.executable).parent)
        if shutil.which("ninja", path=venv_bin):
            os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
        else:
            return False, "ninja (needed by torch's C++ extension builder) not on PATH"
    build_dir.mkdir(parents=True, exist_ok=True)
    lock = build_dir / "lock"  # torch's FileBaton: a second process waits for the first one's build
    try:
        if lock.exists() and time.time() - lock.stat().st_mtime > _STALE_LOCK_S:
            lock.unlink(missing_ok=True)
    except OSError:
        pass
    src = build_dir / "int4_gemv.cpp"
    if not src.exists() or src.read_text(encoding="utf-8") != source:
        tmp = build_dir / f"int4_gemv.cpp.{os.getpid()}.tmp"
        tmp.write_text(source, encoding="utf-8")
        os.replace(tmp, src)
    try:
        import contextlib
        import io

        from torch.utils import cpp_extension

        verbose = os.environ.get(ENV_VERBOSE, "") not in ("", "0")
        sink = io.StringIO()
        quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(sink)
        with quiet:
            cpp_extension.load(name=name, sources=[str(src)], extra_cflags=cflags, extra_ldflags=ldflags,
                               build_directory=str(build_dir), is_python_module=False, verbose=verbose)
    except Exception as exc:
        return False, f"kernel build failed: {_first_error_line(str(exc))}"
    done.write_text(f"{torch.__version__}\n", encoding="utf-8")
    _state.update(build_s=time.perf_counter() - start, library=str(library))
    _prune_old_builds(build_dir)
    return True, None


def _prune_old_builds(keep: Path) -> None:
    """Delete other versions' build folders (a new source, torch or Python) not loaded for ``_PRUNE_AFTER_S``."""
    import shutil

    now = time.time()
    for other in keep.parent.glob("int4_gemv-*"):
        if other == keep or not other.is_dir():
            continue
        try:
            marker = other / "built.ok"
            last_used = (marker if marker.exists() else other).stat().st_mtime
            if now - last_used > _PRUNE_AFTER_S:
                shutil.rmtree(other, ignore_errors=True)
        except OSError:
            pass


def _register_fake() -> None:
    global _fake_registered
    if _fake_registered:
        return
    import torch

    @torch.library.register_fake(OP_NAME)
    def _(x, qweight, scales, offsets, int8_x=False):
        return x.new_empty((x.shape[0], qweight.shape[0]))

    _fake_registered = True


def _ensure_loaded() -> bool:
    with _lock:
        if _state["loaded"] is None:
            try:
                ok, reason = _load()
                if ok:
                    _register_fake()
                    import torch

                    _state["op"] = torch.ops.playground.int4_gemv.default
            except Exception as exc:  # never raise from available()
                ok, reason = False, f"kernel load failed: {_first_error_line(str(exc))}"
            _state.update(loaded=ok, reason=reason)
        return bool(_state["loaded"])


def available() -> bool:
    """True when the compiled kernel is loaded (builds it on the first call, then cached on disk); never raises."""
    if _env_disabled():
        return False
    return _ensure_loaded()


def unavailable_reason() -> str | None:
    """Why the kernel is not used (disabled, no compiler, the build error's first line), or None when it is."""
    if _env_disabled():
        return f"disabled by {ENV_ENABLE}={os.environ.get(ENV_ENABLE)}"
    if _ensure_loaded():
        return None
    return _state["reason"]


def build_info() -> dict[str, Any]:
    """For the bench and the UI: whether it loaded, build or cache-load seconds, the library path, the code path."""
    info = {k: _state[k] for k in ("loaded", "reason", "build_s", "load_s", "library")}
    if _state["loaded"]:
        import torch

        info["isa"] = torch.ops.playground.int4_gemv_isa()
    return info


def set_isa(isa: str) -> str:
    """Cap the kernel's code path at "avx512", "avx2" or "scalar" (tests, benches); returns the paths now taken
    ("<fp32 path> <int8 path>", e.g. "avx512 avx512-vnni")."""
    import torch

    if not _ensure_loaded():
        raise RuntimeError(f"int4 kernel unavailable: {_state['reason']}")
    return torch.ops.playground.int4_gemv_set_isa(isa)


def _reset_for_tests() -> None:
    """Forget the load state (the library itself stays loaded in this process)."""
    with _lock:
        _state.update(loaded=None, reason=None, build_s=None, load_s=None, library=None)


# ---------------------------------------------------------------- matmul ------------------------------------------


def _use_kernel() -> bool:
    """Marked ``assume_constant_result`` (below): evaluated once per torch.compile trace."""
    if os.environ.get(ENV_ENABLE) is not None and _env_disabled():
        return False
    return _state["loaded"] is True or _ensure_loaded()


def _int8_default() -> bool:
    """``$PLAYGROUND_INT4_ACTIVATIONS`` (int8 or fp32); a trace-time constant to torch.compile like ``_use_kernel``."""
    return (os.environ.get(ENV_ACTIVATIONS) or "fp32").strip().lower() == "int8"


# matmul's kernel-or-fallback and activation choices are trace-time constants to torch.compile (no graph break).
# torch.compiler.assume_constant_result(fn) only sets this attribute; setting it here avoids importing torch._dynamo
# (~1.5 s) in processes that never compile. test_matmul_under_torch_compile checks that it still does the job.
_use_kernel._dynamo_marked_constant = True  # type: ignore[attr-defined]
_int8_default._dynamo_marked_constant = True  # type: ignore[attr-defined]


def quantize_activations(x: torch.Tensor) -> torch.Tensor:
    """What the int8 mode multiplies by: x [T, K] fp32 rounded per group of 32 to int8 * (max|x| / 127).

    Bit for bit the kernel's rounding: inv = 127 / max|x| in fp32, round(x * inv) half to even.
    """
    import torch

    g = x.reshape(x.shape[0], -1, GROUP)
    amax = g.abs().amax(dim=-1, keepdim=True)
    inv = torch.where(amax > 0, 127.0 / amax, torch.zeros_like(amax))
    return (torch.round(g * inv) * (amax / 127.0)).reshape(x.shape)


def _fallback(x: torch.Tensor, w: Int4Weight, int8_x: bool) -> torch.Tensor:
    """Stock torch, a chunk of rows (~1 MiB of fp32) dequantized at a time."""
    import torch
    import torch.nn.functional as F

    rows = max(1, _FALLBACK_CHUNK // w.k)
    if not int8_x:
        if rows >= w.n:
            return F.linear(x, _dequantize_rows(w, 0, w.n, x.dtype))
        parts = [F.linear(x, _dequantize_rows(w, i, min(w.n, i + rows), x.dtype)) for i in range(0, w.n, rows)]
        return torch.cat(parts, dim=-1)
    # int8 mode, as the kernel computes it: scale * sum(q * x8) with quantized x, offset * sum(x) with exact x.
    x2 = x.reshape(-1, w.k).float()
    xq = quantize_activations(x2)
    sums = x2.reshape(x2.shape[0], -1, GROUP).sum(dim=-1)  # [T, G]
    parts = []
    for i in range(0, w.n, rows):
        j = min(w.n, i + rows)
        parts.append(F.linear(xq, _dequantize_rows(w, i, j, offsets=False)) + sums @ w.offsets[i:j].float().T)
    out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
    return out.reshape(*x.shape[:-1], w.n).to(x.dtype)


def matmul(x: torch.Tensor, w: Int4Weight, *, int8_activations: bool | None = None) -> torch.Tensor:
    """``x @ dequantize(w).T`` for x [..., K] fp32 (usually [T, K]); the kernel when available, else the fallback.

    ``int8_activations`` (default ``$PLAYGROUND_INT4_ACTIVATIONS == "int8"``, else False) quantizes x per group of
    32 to int8 first (``quantize_activations``): about 2x less compute, ~1e-3 relative error. Both the kernel and
    the fallback compute the chosen mode, so they agree up to float rounding.
    Works inside ``torch.compile(fullgraph=True)``: the kernel-or-fallback choice is made once at trace time.
    """
    import torch

    int8_x = _int8_default() if int8_activations is None else bool(int8_activations)
    if _use_kernel() and x.dtype == torch.float32 and x.is_cpu and w.qweight.is_cpu:
        op = _state["op"]  # torch.ops.playground.int4_gemv.default, looked up once
        if x.dim() == 2:
            return op(x, w.qweight, w.scales, w.offsets, int8_x)
        out = op(x.reshape(-1, x.shape[-1]), w.qweight, w.scales, w.offsets, int8_x)
        return out.reshape(*x.shape[:-1], w.n)
    if x.shape[-1] != w.k:
        raise ValueError(f"matmul: x has K={x.shape[-1]}, the weight {w.k}")
    return _fallback(x, w, int8_x)
