"""Building and loading the kernel library survives what users' machines do to it: a truncated library is never
loaded (it would die with SIGBUS), an interrupted build's lock does not hang the next launch, a build lands in place
only when complete. And where a compiler exists, the library is there: the app's decode runs the fused step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from playground.engine.fast import kernel_build, kernels

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def built() -> Path:
    """The session's valid build folder (the conftest's shared cache)."""
    if not kernels.available():
        if kernels.compiler_present():
            pytest.fail(f"the kernel library did not build although a compiler is present: "
                        f"{kernels.unavailable_reason()}")
        pytest.skip("no C++ compiler here")
    return Path(kernels.build_info()["library"]).parent


def test_a_compiler_means_the_library_is_in_use(built: Path):
    info = kernels.build_info()
    assert info["loaded"] is True and info["isa"].split()[0] in ("avx512", "avx2", "scalar")
    key = kernel_build.build_key()
    assert not list(built.parent.glob(f"kernels-{key}.tmp-*")), "a finished build leaves no temporary folder"
    manifest = json.loads((built / "manifest.json").read_text())
    library = Path(info["library"])
    assert manifest["size"] == library.stat().st_size


def test_a_truncated_library_is_refused_not_loaded(built: Path, tmp_path: Path):
    key = kernel_build.build_key()
    copy = tmp_path / "cache" / built.name
    shutil.copytree(built, copy)
    library = copy / kernel_build.library_name(key)
    assert kernel_build.valid_library(copy, key) == library
    library.write_bytes(library.read_bytes()[: library.stat().st_size // 3])  # a copy cut short
    assert kernel_build.valid_library(copy, key) is None
    # A fresh process pointed at the damaged cache, without a compiler to rebuild: it must report, not crash.
    code = "from playground.engine.fast import kernels\nprint(kernels.available(), kernels.unavailable_reason())"
    env = dict(os.environ, **{kernel_build.ENV_CACHE: str(tmp_path / "cache"), "CXX": str(tmp_path / "no-cxx")})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]  # SIGBUS would be -7
    assert out.stdout.startswith("False") and "compiler" in out.stdout


def test_a_dead_builders_lock_is_taken_over(tmp_path: Path):
    lock = tmp_path / "kernels-x.lock"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    assert kernel_build._stale(lock)
    assert not kernel_build._take_lock(lock) and not lock.exists()  # removed; the next try takes it
    assert kernel_build._take_lock(lock) and json.loads(lock.read_text())["pid"] == os.getpid()
    assert not kernel_build._stale(lock)  # a live builder's lock is respected
    old = time.time() - kernel_build.STALE_LOCK_S - 1
    os.utime(lock, (old, old))
    assert kernel_build._stale(lock)  # however alive, a lock this old was left behind


def test_waiting_for_another_build_gives_up_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """torch's FileBaton waits forever on a lock; ours gives up after WAIT_S and says why (the fallback runs)."""
    if not kernels.compiler_present():
        pytest.skip("no C++ compiler here")
    monkeypatch.setenv(kernel_build.ENV_CACHE, str(tmp_path))
    monkeypatch.setattr(kernel_build, "WAIT_S", 1.0)
    key = kernel_build.build_key()
    import socket

    (tmp_path / f"kernels-{key}.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    started = time.monotonic()
    heard: list[float | None] = []
    with pytest.raises(kernel_build.BuildError, match="timed out"):
        kernel_build.locate_or_build(heard.append)
    assert time.monotonic() - started < 10
    assert heard == [None]  # told once that it waits (the loader shows kernels.WAIT_STAGE), not once a poll


def test_a_build_error_is_reported_with_the_compilers_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A source that does not compile: the reason names the error; nothing half-built is left in the cache."""
    if not kernels.compiler_present():
        pytest.skip("no C++ compiler here")
    monkeypatch.setenv(kernel_build.ENV_CACHE, str(tmp_path))
    texts = kernel_build.source_texts()
    texts["common.cpp"] = texts["common.cpp"] + "\nthis is not C++;\n"
    monkeypatch.setattr(kernel_build, "source_texts", lambda: texts)
    monkeypatch.setattr(kernel_build, "SOURCES", ("common.cpp",))  # one file: a fast failure
    with pytest.raises(kernel_build.BuildError, match="error:"):
        kernel_build.locate_or_build()
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


def test_a_bundle_uses_its_prebuilt_library_only_when_it_matches(built: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch):
    """packaging/playground.spec ships the build host's library under <bundle>/kernels/: used as is (no compiler
    needed on the user's machine) when built from the same sources, torch and Python; never when damaged."""
    from playground import bundle

    shipped = tmp_path / "bundle" / "kernels" / built.name
    shutil.copytree(built, shipped)
    monkeypatch.setattr(bundle, "bundle_dir", lambda: tmp_path / "bundle")
    library = kernel_build._bundled()
    assert library is not None and library.parent == shipped
    monkeypatch.setenv(kernel_build.ENV_CACHE, str(tmp_path / "empty-cache"))
    monkeypatch.setenv("CXX", str(tmp_path / "no-cxx"))  # the user's machine: no compiler
    assert kernel_build.locate_or_build() == (library, None)
    manifest = json.loads((shipped / "manifest.json").read_text())
    (shipped / "manifest.json").write_text(json.dumps({**manifest, "torch": "0.0.1"}))  # built for another torch
    assert kernel_build._bundled() is None
    (shipped / "manifest.json").write_text(json.dumps(manifest))
    library.write_bytes(library.read_bytes()[:1000])
    assert kernel_build._bundled() is None


# A stand-in for the C++ compiler: ninja's compile and link commands write their outputs (and the depfile) after a
# pause, so a build takes seconds; the "library" it links is empty, so loading it fails as a broken build would.
SLOW_COMPILER = """#!/bin/sh
out=""; dep=""; prev=""
for a in "$@"; do
  case "$prev" in -o) out="$a";; -MF) dep="$a";; esac
  prev="$a"
done
case " $* " in *" -dumpversion "*|*" -dumpfullversion "*) echo 12.2.0; exit 0;; esac
case " $* " in *" --version "*|*" -v "*) echo "g++ (GCC) 12.2.0"; exit 0;; esac
sleep 0.4
if [ -n "$dep" ]; then echo "$out:" > "$dep"; fi
if [ -n "$out" ]; then : > "$out"; fi
"""


def test_a_first_runs_kernel_build_shows_its_progress_where_a_model_is_added(tmp_path: Path):
    """A first run builds the library (a minute or more on 2 cores) inside ``models add`` or a model's first load:
    the user had seen "0% Reading model.gguf" stand still that long. The build is now a stage of its own whose share
    rises as the sources compile; a build that fails still lets the model be added (stock torch runs it)."""
    from tests.gguf_files import tiny_model, write_gguf

    model = write_gguf(tiny_model("llama"), tmp_path / "tiny.gguf", quant="Q4_0")
    compiler = tmp_path / "bin" / "g++"  # (named as torch expects, or its builder warns)
    compiler.parent.mkdir()
    compiler.write_text(SLOW_COMPILER)
    compiler.chmod(0o755)
    env = dict(os.environ, CXX=str(compiler), MAX_JOBS="2", PLAYGROUND_HOME=str(tmp_path / "home"),
               **{kernel_build.ENV_CACHE: str(tmp_path / "cache")})
    env.pop(kernels.ENV_ENABLE, None)
    code = "import sys\nfrom playground.cli.main import main\nsys.exit(main(sys.argv[1:]))"
    out = subprocess.run([sys.executable, "-c", code, "models", "add", str(model)], env=env, capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "added tiny" in out.stdout
    shares = [int(line.split("%")[0].split()[-1]) for line in out.stderr.splitlines() if kernels.BUILD_STAGE in line]
    assert shares[0] == 0 and len(shares) >= 3, out.stderr[-2000:]  # 0%, then steps on the way (per 25% on a CLI)
    assert shares == sorted(shares) and shares[-1] < 100  # rising; never "100%": this build failed
