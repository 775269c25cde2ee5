"""The compiled kernel library, loaded once per process: whether it is in use, why not, and which code path.

``available()`` builds (first launch) or loads (later ones) the library (``kernel_build``) and never raises;
``unavailable_reason()`` says why it is not in use. Without it everything still runs on stock torch (the
fallbacks in ``int4_kernel`` / ``int8_kernel`` and the Python decode step), several times slower; where a C++
compiler exists the library is expected to build (``compiler_present()``; the test suite requires it).

``prepare(on_progress)`` is ``available()`` for a loader with a progress display: a first run's build (a minute
or more) shows as a stage with its share done, rather than a stalled "Reading …".

``PLAYGROUND_INT4_KERNEL=0`` turns the library off (read at every call).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

from playground.domain.jobs import ProgressEvent

ENV_ENABLE = "PLAYGROUND_INT4_KERNEL"
BUILD_STAGE = "Building the CPU kernels for this machine (once, ~1 min)"
WAIT_STAGE = "Waiting for another Playground process to finish building the CPU kernels"
# the library's ops that ``op(name)`` hands out (looked up once, at load)
_OPS = ("qlinear", "qlinear_into", "int4_gemv", "qdequantize", "decoder_step", "repack_q4_0", "repack_q4_1",
        "repack_q4_k", "repack_q5_0", "repack_q8_0", "repack_q6_k", "repack_q6_k_int6", "repack_q2_k", "repack_q3_k",
        "repack_q5_k", "repack_iq4_nl", "repack_iq4_xs", "repack_q5_0_int5", "repack_q5_1_int5", "repack_q5_k_int5",
        "q5_k_params", "nonfinite_halves")

_lock = threading.Lock()
_state: dict[str, Any] = {"loaded": None, "reason": None, "build_s": None, "load_s": None, "library": None,
                          "ops": None, "c_functions": {}}


def env_disabled() -> bool:
    return (os.environ.get(ENV_ENABLE) or "").strip().lower() in ("0", "false", "no", "off")


def _load(on_build: Callable[[float | None], None] | None = None) -> tuple[bool, str | None]:
    import torch

    from playground.engine.fast import kernel_build

    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in ("AVX2", "AVX512"):
        return False, f"CPU lacks AVX2/FMA (torch reports {capability})"
    started = time.perf_counter()
    try:
        library, build_s = kernel_build.locate_or_build(on_build)
        if build_s is None:
            torch.ops.load_library(str(library))
    except kernel_build.BuildError as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - a library that does not load is reported, never raised
        return False, f"kernel load failed: {kernel_build.first_error_line(str(exc))}"
    _state.update(library=str(library), build_s=build_s,
                  load_s=None if build_s is not None else time.perf_counter() - started)
    return True, None


def _ensure_loaded(on_build: Callable[[float | None], None] | None = None) -> bool:
    with _lock:
        if _state["loaded"] is None:
            try:
                ok, reason = _load(on_build)
                if ok:
                    _register_fakes()
                    import torch

                    ns = torch.ops.playground
                    _state["ops"] = {name: getattr(ns, name).default for name in _OPS}
            except Exception as exc:  # noqa: BLE001 - never raise from available()
                ok, reason = False, f"kernel load failed: {exc}"
            _state.update(loaded=ok, reason=reason)
        return bool(_state["loaded"])


def available() -> bool:
    """True when the compiled library is loaded (built on the first call, then cached on disk); never raises."""
    if env_disabled():
        return False
    return _ensure_loaded()


def prepare(on_progress: Callable[[ProgressEvent], None]) -> bool:
    """``available()``, telling ``on_progress`` of a build it has to run or wait for first (BUILD_STAGE with the
    share done, or WAIT_STAGE); nothing is said when the library is already built."""
    if env_disabled():
        return False

    def building(fraction: float | None) -> None:
        on_progress(ProgressEvent(WAIT_STAGE if fraction is None else BUILD_STAGE, fraction))

    return _ensure_loaded(building)


def loaded() -> bool:
    """``available()`` without the environment check: marked constant for torch.compile (see int4_kernel)."""
    return _state["loaded"] is True or _ensure_loaded()


def op(name: str) -> Any:
    return _state["ops"][name]


def c_function(name: str, restype: Any, argtypes: list[Any], gil: bool = False) -> Any:
    """The library's plain C function ``name`` through ctypes (``gil``: PyDLL, the GIL held and a Python error
    raised as such; else CDLL, the GIL released during the call), or None where the library is not loaded or does
    not export it."""
    if not available():
        return None
    functions = _state["c_functions"]
    if name not in functions:
        import ctypes

        try:
            fn = getattr((ctypes.PyDLL if gil else ctypes.CDLL)(_state["library"]), name)
        except (OSError, AttributeError):  # a library that does not export it: the caller does without
            fn = None
        else:
            fn.restype, fn.argtypes = restype, argtypes
        functions[name] = fn
    return functions[name]


def pair_list(tokens: list[str], left: Any, right: Any) -> list[tuple[str, str]] | None:
    """``[(tokens[l], tokens[r]) for l, r in zip(left, right)]`` (int64 numpy arrays) built by the library's C
    function ``pg_pair_list``; None where the library is not loaded."""
    import ctypes

    fn = c_function("pg_pair_list", ctypes.py_object,
                    [ctypes.py_object, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64], gil=True)
    if fn is None:
        return None
    import numpy as np

    left = np.ascontiguousarray(left, dtype=np.int64)
    right = np.ascontiguousarray(right, dtype=np.int64)
    if left.shape != right.shape or left.ndim != 1:
        raise ValueError("pair_list: left and right must be 1-D and of one length")
    return fn(tokens if type(tokens) is list else list(tokens), left.ctypes.data, right.ctypes.data, len(left))


def unavailable_reason() -> str | None:
    """Why the library is not used (disabled, no compiler, the build error's first line), or None when it is."""
    if env_disabled():
        return f"disabled by {ENV_ENABLE}={os.environ.get(ENV_ENABLE)}"
    if _ensure_loaded():
        return None
    return _state["reason"]


def compiler_present() -> bool:
    """A C++ compiler and ninja are here: the library is expected to build (a failure is a bug, not a fallback)."""
    import sys
    from pathlib import Path

    compiler = os.environ.get("CXX", "c++").split()[0]
    ninja = shutil.which("ninja") or shutil.which("ninja", path=str(Path(sys.executable).parent))
    return bool(shutil.which(compiler) and ninja)


def build_info() -> dict[str, Any]:
    """For benches and the UI: whether it loaded, build or load seconds, the library path, the code path."""
    info = {k: _state[k] for k in ("loaded", "reason", "build_s", "load_s", "library")}
    if _state["loaded"]:
        import torch

        info["isa"] = torch.ops.playground.int4_gemv_isa()
    return info


def vnni512() -> bool:
    """Whether the AVX512-VNNI kernels run now: the library loaded, the CPU has them, no cap below avx512."""
    return available() and str(build_info().get("isa", "")).split()[:2] == ["avx512", "avx512-vnni"]


def int16_avx2() -> bool:
    """Whether the AVX2 path runs now (the CPU has no AVX-512, or it is capped at avx2): its decode takes fp32 x
    rounded to int16 (``csrc/int4_rows.cpp`` int4_rows_x16_avx2, ``csrc/int8_rows.cpp`` int8_rows_x16_avx2)."""
    return available() and str(build_info().get("isa", "")).split()[:1] == ["avx2"]


def set_isa(isa: str) -> str:
    """Cap the code path at "avx512", "avx2" or "scalar" (tests, benches); returns the paths now taken
    ("<fp32 path> <int8 path> <threads>", e.g. "avx512 avx512-vnni openmp")."""
    import torch

    if not _ensure_loaded():
        raise RuntimeError(f"kernel library unavailable: {_state['reason']}")
    return torch.ops.playground.int4_gemv_set_isa(isa)


def reset_for_tests() -> None:
    """Forget the load state (the library itself stays loaded in this process)."""
    with _lock:
        _state.update(loaded=None, reason=None, build_s=None, load_s=None, library=None, ops=None, c_functions={})


_fakes_registered = False


def _register_fakes() -> None:
    global _fakes_registered
    if _fakes_registered:
        return
    import torch

    @torch.library.register_fake("playground::int4_gemv")
    def _(x, qweight, scales, offsets, int8_x=False):
        return x.new_empty((x.shape[0], qweight.shape[0]))

    @torch.library.register_fake("playground::qlinear")
    def _(x, weights, kinds, int8_x=False, bf16=False, gemm=False):
        rows, i = 0, 0
        for kind in kinds:
            rows += weights[i].shape[0]
            i += 3 if kind in (1, 4) else 2  # int4 and int5: qweight, scales, offsets
        return x.new_empty((x.shape[0], rows))

    _fakes_registered = True
