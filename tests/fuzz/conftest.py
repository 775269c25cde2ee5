"""Fuzz tests run in a folder of their own (a mutated relative --out or --data-dir lands there, not in the
checkout), and the serve one uses the served tiny model of tests/remote."""

import pytest

from tests.remote.conftest import long_tiny_dir  # noqa: F401 - a fixture, used by name


@pytest.fixture(autouse=True)
def own_working_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
