"""Fixtures for remote engines: one ``playground serve`` (in this process, on an ephemeral loopback port) over a
tiny random llama with a long context, so a stream can be cancelled or cut while it is still going."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from playground.models.endpoints import ENV_NO_KEYRING

SERVED_CONTEXT = 4096
SERVED_NAME = "tiny-long"


@pytest.fixture(autouse=True)
def no_real_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys from tests never reach the developer's own keyring (tests that want one install a fake)."""
    monkeypatch.setenv(ENV_NO_KEYRING, "1")


@pytest.fixture(scope="session")
def long_tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-long"), context=SERVED_CONTEXT)


@pytest.fixture(scope="session")
def long_tiny_model(long_tiny_dir: Path):
    """The served weights, loaded locally: the reference a remote run must match."""
    from playground.engine.text import load_text_model

    return load_text_model(str(long_tiny_dir), long_tiny_dir, device="cpu", dtype="float32")


class Served:
    """A running ``playground serve``: its URL, model id, key, and the app (to see what the server saw)."""

    def __init__(self, server, model_id: str, api_key: str | None) -> None:  # noqa: ANN001
        self.server = server
        self.app = server.app
        self.model_id = model_id
        self.api_key = api_key
        self.url = server.url


def _serve(model_dir: Path, home: Path, api_key: str | None) -> Iterator[Served]:
    from playground.remote.serve_app import ServeApp
    from playground.remote.server import PlaygroundServer
    from playground.runtime.runner import EngineRunner

    with pytest.MonkeyPatch.context() as mp:  # the registry reads its data dir when created
        mp.setenv("PLAYGROUND_HOME", str(home))
        runner = EngineRunner(device="cpu", dtype="float32", thread_name="serve-engine")
    runner.load(str(model_dir)).result(60)
    app = ServeApp(runner, str(model_dir), api_key, log=lambda line: None, name=SERVED_NAME)
    server = PlaygroundServer(app, "127.0.0.1", 0).start()
    try:
        yield Served(server, SERVED_NAME, api_key)
    finally:
        server.stop()
        runner.shutdown()


@pytest.fixture(scope="session")
def served(long_tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Our server without an API key."""
    yield from _serve(long_tiny_dir, tmp_path_factory.mktemp("serve-home"), None)


@pytest.fixture(scope="session")
def served_with_key(long_tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Our server requiring ``Authorization: Bearer sk-test-secret-123``."""
    yield from _serve(long_tiny_dir, tmp_path_factory.mktemp("serve-home-key"), "sk-test-secret-123")


def add_endpoint(name: str, url: str, model: str = "", api_key: str | None = None, timeout_s: float = 30.0) -> str:
    """Save an endpoint in this test's data dir; return the remote id of ``model`` on it."""
    from playground.domain.models import remote_id
    from playground.models.endpoints import Endpoint, EndpointStore

    EndpointStore().save(Endpoint(name, url, model, timeout_s), api_key=api_key)
    return remote_id(name, model)


@pytest.fixture
def remote_model_id(served: Served) -> str:
    """``remote:ours/<served model>``, an endpoint on our own server."""
    return add_endpoint("ours", served.url, served.model_id)


def env_without_keyring() -> dict[str, str]:
    return {**os.environ, ENV_NO_KEYRING: "1"}
