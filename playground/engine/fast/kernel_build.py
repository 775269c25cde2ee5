"""Build, validate and load the C++ kernel library (``csrc/``: quantized matmuls, attention, the fused decode step).

The library is built once per (sources, compiler flags, torch, Python) with torch's C++ extension machinery (ninja
and the C++ compiler) into ``<cache>/kernels-<key>/`` and loaded by later processes in milliseconds. What makes it
safe to share between processes and survive interruptions:

- the build runs in a private temporary folder that is renamed into place only when complete, with a manifest
  recording the library's size and sha256; a library whose size or hash does not match (a truncated copy, a full
  disk) is never loaded (loading a truncated ``.so`` dies with SIGBUS) — it is deleted and rebuilt;
- concurrent first launches are serialised by a lock file holding the builder's pid; a lock whose process is gone,
  or older than ``STALE_LOCK_S``, is taken over; waiting for another builder gives up after ``WAIT_S`` (torch's own
  ``FileBaton.wait()`` would wait forever on a killed build's lock).

A bundle (PyInstaller) carries a prebuilt library under ``<bundle>/kernels/kernels-<key>/`` (packaging/
playground.spec); it is used when its manifest matches the bundle's own sources, torch, Python and CPU
architecture (the flags part of the key is not compared: the bundle's machine may have no compiler at all).

Environment: ``PLAYGROUND_KERNEL_CACHE`` sets the cache folder; ``PLAYGROUND_KERNEL_VERBOSE=1`` shows the compiler.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ENV_CACHE = "PLAYGROUND_KERNEL_CACHE"
ENV_VERBOSE = "PLAYGROUND_KERNEL_VERBOSE"
# Told how far a build has come (0..1: compiled sources of SOURCES plus the link), or None while another process
# builds the same library and this one waits for it.
BuildProgress = Callable[[float | None], None]
SOURCES = ("common.cpp", "dequant.cpp", "int4_rows.cpp", "int5_rows.cpp", "int6_rows.cpp", "int8_rows.cpp",
           "attention.cpp", "ops.cpp", "decoder_step.cpp", "gguf_repack.cpp", "gguf_int5.cpp", "gguf_int8.cpp",
           "gguf_vocab.cpp", "gemm_avx2.cpp", "gemm_avx512.cpp", "gemm_small.cpp", "gemm_small_avx2.cpp",
           "gemm_ops.cpp")
HEADERS = ("kernels.h", "simd.h", "rows.h", "prefetch.h", "row_pass.h", "ops.h", "gguf_blocks.h", "gemm_pack.h",
           "vnni_quads.h")
STALE_LOCK_S = 900.0  # a build takes 1-3 minutes on 2 cores: a lock this old was left by a killed build
WAIT_S = 600.0  # how long to wait for another process's build before giving up (the fallback then runs)
_CFLAGS = ["-O3", "-fno-math-errno", "-std=c++17"]  # SIMD through target attributes, chosen at run time
_PRUNE_AFTER_S = 14 * 24 * 3600  # other versions' builds unused this long are deleted after a build


class BuildError(RuntimeError):
    """The library could not be built or loaded; the message is the reason (first compiler error line)."""


def source_texts() -> dict[str, str]:
    from importlib import resources

    folder = resources.files("playground.engine.fast").joinpath("csrc")
    return {name: folder.joinpath(name).read_text(encoding="utf-8") for name in (*SOURCES, *HEADERS)}


def source_digest() -> str:
    """sha256 of the kernel's C++ sources: what a prepared build or stored weights were made from."""
    h = hashlib.sha256()
    for name, text in sorted(source_texts().items()):
        h.update(f"{name}\n{text}\n".encode())
    return h.hexdigest()


def cache_root() -> Path:
    override = os.environ.get(ENV_CACHE)
    if override:
        return Path(override).expanduser()
    from playground import paths

    return paths.data_dir() / "kernels"


def build_flags() -> tuple[list[str], list[str]]:
    """Compiler and linker flags. at::parallel_for is header code: without -fopenmp its ``#pragma omp parallel``
    is ignored and the kernels run on one thread. With GCC on Linux, -fopenmp links ``libgomp.so.1``, which
    resolves to the libgomp torch already loaded (same soname), so there is one OpenMP thread pool; clang would
    bring its own runtime, so it (and other platforms) builds without and runs single-threaded."""
    import torch

    compiler = shutil.which(os.environ.get("CXX", "c++").split()[0]) or ""
    gcc = "clang" not in os.path.basename(os.path.realpath(compiler)) if compiler else False
    if sys.platform.startswith("linux") and gcc and "parallel backend: OpenMP" in torch.__config__.parallel_info():
        return [*_CFLAGS, "-fopenmp"], ["-fopenmp"]
    return list(_CFLAGS), []


def build_key() -> str:
    import torch

    cflags, ldflags = build_flags()
    text = "\n".join([source_digest(), " ".join(cflags + ldflags), torch.__version__, sys.version.split()[0],
                      sys.platform, platform.machine()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def library_name(key: str) -> str:
    return f"playground_kernels_{key}{'.pyd' if sys.platform == 'win32' else '.so'}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def valid_library(folder: Path, key: str) -> Path | None:
    """The library in ``folder`` if its manifest matches it byte for byte (size and sha256), else None."""
    library = folder / library_name(key)
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("key") != key or library.stat().st_size != manifest.get("size"):
            return None
        if _sha256(library) != manifest.get("sha256"):
            return None
    except (OSError, ValueError, AttributeError):
        return None
    return library


def _identity() -> dict[str, str]:
    """What a library must have been built against to load here (besides its own flags)."""
    import torch

    return {"sources": source_digest(), "torch": torch.__version__, "python": sys.version.split()[0],
            "platform": sys.platform, "machine": platform.machine()}


def _bundled() -> Path | None:
    from playground import bundle

    root = bundle.bundle_dir()
    if root is None:
        return None
    wanted = _identity()
    for folder in sorted((root / "kernels").glob("kernels-*")):
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if all(manifest.get(k) == v for k, v in wanted.items()):
            found = valid_library(folder, str(manifest.get("key")))
            if found:
                return found
    return None


def locate_or_build(on_build: BuildProgress | None = None) -> tuple[Path, float | None]:
    """The path of a valid library for this machine, building it if needed; returns (library, build seconds, or
    None when it was already built). A library built now is already loaded into this process (torch's builder
    loads it). ``on_build`` hears of a build (or a wait for another process's) as it goes; nothing when the library
    is found. Raises ``BuildError`` with the reason."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        raise BuildError(f"no kernel for {platform.machine()} CPUs (x86-64 with AVX2 only)")
    try:
        key = build_key()
    except OSError as exc:
        raise BuildError(f"kernel sources missing: {exc}") from exc
    found = _bundled()
    if found:
        return found, None
    root = cache_root()
    final = root / f"kernels-{key}"
    found = valid_library(final, key)
    if found:
        _touch(final / "manifest.json")
        return found, None
    _check_toolchain()
    root.mkdir(parents=True, exist_ok=True)
    lock = root / f"kernels-{key}.lock"
    deadline = time.monotonic() + WAIT_S
    waiting = False
    while not _take_lock(lock):
        if on_build is not None and not waiting:
            on_build(None)
            waiting = True
        if time.monotonic() > deadline:
            raise BuildError(f"timed out after {WAIT_S:.0f} s waiting for another process's kernel build ({lock})")
        time.sleep(0.5)
        found = valid_library(final, key)
        if found:
            return found, None
    try:
        found = valid_library(final, key)  # built by the process that held the lock
        if found:
            return found, None
        started = time.perf_counter()
        library = _build(root, final, key, on_build)
        _prune_old_builds(root, final)
        return library, time.perf_counter() - started
    finally:
        lock.unlink(missing_ok=True)


def _check_toolchain() -> None:
    compiler = os.environ.get("CXX", "c++").split()[0]
    if not shutil.which(compiler):
        raise BuildError(f"no C++ compiler ({compiler}) on PATH")
    if not shutil.which("ninja"):
        # The ``ninja`` wheel puts its binary next to the interpreter; a venv used without activating it
        # (scripts/run calls .venv/bin/python) does not have that folder on PATH.
        venv_bin = str(Path(sys.executable).parent)
        if not shutil.which("ninja", path=venv_bin):
            raise BuildError("ninja (needed by torch's C++ extension builder) not on PATH")
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")


def _take_lock(lock: Path) -> bool:
    """Create the lock file (pid, host); True when this process now holds it. A stale lock is removed first."""
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        if _stale(lock):
            lock.unlink(missing_ok=True)
        return False
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "host": socket.gethostname()}, f)
    return True


def _stale(lock: Path) -> bool:
    try:
        age = time.time() - lock.stat().st_mtime
        owner = json.loads(lock.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return True
    if age > STALE_LOCK_S:
        return True
    if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
        return not _alive(owner["pid"])  # the builder died
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _watch(folder: Path, on_build: BuildProgress | None, every_s: float = 0.5) -> Iterator[None]:
    """While the body builds into ``folder``: ``on_build`` with the share of SOURCES compiled so far (their object
    files, one per source, as ninja finishes them; the link is the last share), from a thread, as it changes."""
    if on_build is None:
        yield
        return
    done = threading.Event()

    def poll() -> None:
        told = -1
        while not done.wait(every_s):
            compiled = min(len(SOURCES), len(list(folder.glob("*.o"))))
            if compiled != told:
                told = compiled
                try:
                    on_build(compiled / (len(SOURCES) + 1))
                except Exception:  # noqa: BLE001 - a display gone (a closed window) must not matter to the build
                    return

    on_build(0.0)
    watcher = threading.Thread(target=poll, name="kernel-build-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _build(root: Path, final: Path, key: str, on_build: BuildProgress | None = None) -> Path:
    from torch.utils import cpp_extension

    tmp = root / f"kernels-{key}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name, text in source_texts().items():
            (tmp / name).write_text(text, encoding="utf-8")
        cflags, ldflags = build_flags()
        verbose = os.environ.get(ENV_VERBOSE, "") not in ("", "0")
        sink = io.StringIO()
        quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(sink)
        name = library_name(key).rsplit(".", 1)[0]
        try:
            with quiet, _watch(tmp, on_build):
                cpp_extension.load(name=name, sources=[str(tmp / s) for s in SOURCES], extra_cflags=cflags,
                                   extra_ldflags=ldflags, build_directory=str(tmp), is_python_module=False,
                                   verbose=verbose)
        except Exception as exc:
            raise BuildError(f"kernel build failed: {first_error_line(str(exc))}") from exc
        library = tmp / library_name(key)
        manifest = {"key": key, "size": library.stat().st_size, "sha256": _sha256(library), **_identity(),
                    "flags": " ".join(cflags + ldflags), "built": time.time()}
        (tmp / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)  # an invalid earlier build
        os.replace(tmp, final)
        if on_build is not None:
            on_build(1.0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / library_name(key)


def first_error_line(message: str) -> str:
    """The compiler's first "error:" line (else the first line mentioning an error, else the first line)."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    for test in (lambda x: "error:" in x.lower(), lambda x: "error" in x.lower()):
        for line in lines:
            if test(line) and not line.startswith("Error building extension"):
                return line[:300]
    return lines[0][:300] if lines else "unknown error"


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)  # "last used", for _prune_old_builds


def _prune_old_builds(root: Path, keep: Path) -> None:
    """Delete other versions' build folders (a new source, torch or Python) not loaded for ``_PRUNE_AFTER_S``."""
    now = time.time()
    for other in [*root.glob("kernels-*"), *root.glob("int4_gemv-*")]:
        if other == keep or not other.is_dir():
            continue
        if ".tmp-" in other.name:  # a build killed half-way: remove once its process is gone
            pid = other.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(other, ignore_errors=True)
            continue
        with contextlib.suppress(OSError):
            marker = other / "manifest.json"
            last_used = (marker if marker.exists() else other).stat().st_mtime
            if now - last_used > _PRUNE_AFTER_S:
                shutil.rmtree(other, ignore_errors=True)
