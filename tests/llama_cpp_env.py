"""Where the tests find llama-cpp-python (``bash scripts/llama_cpp_env.sh`` builds it, ~12 min) and the embedded
GGUF; each skips with the reason when one is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from playground.models.embedded import ENV_GGUF, GGUF_NAME
from tests.conftest import embedded_home

VERSION = os.environ.get("LLAMA_CPP_PYTHON_VERSION", "0.3.36")
VENV = Path(os.environ.get("PLAYGROUND_BENCH_CACHE", Path.home() / ".cache" / "playground-bench")) / \
    f"llama-cpp-{VERSION}"


def llama_python() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists() or not (VENV / ".built").exists():
        pytest.skip(f"llama-cpp-python is not built in {VENV}: run `bash scripts/llama_cpp_env.sh` (~12 min)")
    return python


def embedded_gguf() -> Path:
    for candidate in (os.environ.get(ENV_GGUF), embedded_home() / "downloads" / GGUF_NAME):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.skip(f"the embedded GGUF ({GGUF_NAME}) is not in {embedded_home() / 'downloads'}: run scripts/setup.sh")
