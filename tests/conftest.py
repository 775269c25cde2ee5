"""Shared fixtures: a temp data dir per test, a tiny random llama built in-process, the embedded model."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import platformdirs
import pytest

from ui.shell.qt_env import qt_environment  # noqa: E402 - Qt-free: only sets environment variables

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
qt_environment()  # as the app does: root needs no Chromium sandbox; the preview's Chromium flags
# QtWebEngine must be imported before the QApplication exists (pytest-qt creates it lazily).
import PySide6.QtWebEngineWidgets  # noqa: E402, F401

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from playground import paths  # noqa: E402
from tests.tiny import build_tiny_llama  # noqa: E402

# Where the set-up script put the embedded model, read before the per-test data dirs replace the variable.
_SETUP_HOME = os.environ.get(paths.ENV_HOME)


@pytest.fixture(scope="session", autouse=True)
def shared_kernel_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Per-test data dirs would rebuild the int4 kernel in each test: share the set-up's build (or one per run)."""
    if "PLAYGROUND_KERNEL_CACHE" not in os.environ:
        home = embedded_home()
        cache = home / "kernels" if home.is_dir() else tmp_path_factory.mktemp("kernels")
        os.environ["PLAYGROUND_KERNEL_CACHE"] = str(cache)


@pytest.fixture(autouse=True)
def data_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty data dir."""
    from playground.engine.text import set_default_precision

    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv(paths.ENV_HOME, str(home))
    paths.set_data_dir(None)
    yield home
    paths.set_data_dir(None)
    set_default_precision(None)  # a window or --precision sets it process-wide
    if (home / "playground.db").is_file():  # whatever the test recorded, in any mode, must import back
        from tests.store.reimport import assert_sessions_reimportable

        assert_sessions_reimportable(home / "playground.db")


@pytest.fixture(autouse=True)
def no_dangling_engine_threads():
    """Fail a test that leaves an engine worker running (napari's _dangling_qthreads, for our runner)."""
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        alive = [t.name for t in threading.enumerate() if t.name.startswith("engine") and t.is_alive()]
        if not alive:
            return
        time.sleep(0.05)
    pytest.fail(f"engine threads still running after the test: {alive}")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path):
    from playground.engine.text import load_text_model

    # fp32 everywhere so logprobs can be compared exactly; PLAYGROUND_TEST_DEVICE=cuda runs them on a GPU.
    return load_text_model("tiny-llama", tiny_model_dir, device=os.environ.get("PLAYGROUND_TEST_DEVICE", "cpu"),
                           dtype="float32")


def embedded_home() -> Path:
    """The real data dir the set-up script converted the embedded model into (shared across test runs)."""
    return Path(_SETUP_HOME or platformdirs.user_data_dir(paths.APP_NAME, appauthor=False))


@pytest.fixture(scope="session")
def embedded_model():
    from playground.engine.text import load_text_model
    from playground.models.embedded import EMBEDDED_ID, ensure_embedded

    # Loaded with the real data dir too: its quantized weights are stored there by the set-up, not redone per run.
    paths.set_data_dir(embedded_home())
    try:
        return load_text_model(EMBEDDED_ID, ensure_embedded(), device="cpu")
    finally:
        paths.set_data_dir(None)
