"""``playground --self-test`` from the source tree (packaging/build.sh runs the same on the frozen bundle)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from playground.models.convert import is_converted
from playground.models.embedded import EMBEDDED_ID
from tests.conftest import embedded_home

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.embedded
def test_self_test_passes_from_source(tmp_path: Path) -> None:
    cached = embedded_home() / "models" / EMBEDDED_ID
    if not is_converted(cached):
        pytest.skip(f"the embedded model is not converted in {cached} (run `playground setup`)")
    env = {**os.environ, "HOME": str(tmp_path)}  # the self-test makes its own data dir; nothing lands in ~
    env.pop("PLAYGROUND_HOME", None)
    proc = subprocess.run([sys.executable, "-m", "ui.shell.self_test", "--embedded-model", str(cached)],
                          cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-3000:]
    for check in ("window", "completion", "engine path", "html", "demo image", "session", "no bug"):
        assert any(line.startswith("[ ok ] " + check) for line in out.splitlines()), out
    assert "' Rome'" in out
    path_line = next(line for line in out.splitlines() if line.startswith("[ ok ] engine path"))
    assert "int4 · fused · kernels" in path_line, path_line  # the precision and path actually in use
    assert "playground self-test: passed" in out
