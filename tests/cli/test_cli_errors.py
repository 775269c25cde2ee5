"""Every way the CLI was seen to fail with a traceback now ends in one ``error:`` line and a non-zero exit, before
any model loads where the input alone is wrong (issue 15, items 20, 23, 24 and 25)."""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from playground import paths
from playground.cli.main import main
from playground.store.db import open_database
from playground.store.records import Run
from playground.store.repository import SessionStore
from tests.remote.peers import Peer

ESCAPES = "\x1b]0;owned\x07\x1b[2J\x9b31m"


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("[playground]")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "internal error" not in err
    return lines[0]


def export_file(tmp_path: Path, outputs: dict) -> str:
    data = {"format": "playground-session", "version": 1, "session": {"name": "x"},
            "runs": [{"mode": "image", "model_id": "m", "status": "done", "outputs": outputs}]}
    path = tmp_path / f"in-{len(json.dumps(outputs))}.json"
    if tmp_path.is_dir():
        path.write_text(json.dumps(data))
    return str(path)


def cases(tmp_path: Path, tiny: str) -> dict[str, list[str]]:
    a_file = tmp_path / "a-file"
    csv = tmp_path / "t.csv"
    if tmp_path.is_dir():
        a_file.write_text("x")
        csv.write_text("Country,Capital\nFrance,Paris\nItaly,\n")
    return {
        "--device tpu": ["--device", "tpu", "complete", "--model", tiny, "--prompt", "x"],
        "data dir is a file": ["--data-dir", str(a_file), "sessions", "list"],
        "data dir /dev/null": ["--data-dir", "/dev/null", "sessions", "list"],
        "data dir too long": ["--data-dir", str(tmp_path / ("d" * 300)), "sessions", "list"],
        "data dir ~nosuchuser": ["--data-dir", "~nosuchuser-pg/x", "sessions", "list"],
        "export into a file's folder": ["sessions", "export", "1", "--out", str(a_file / "sub" / "x.json")],
        "import images = 5": ["sessions", "import", export_file(tmp_path, {"images": 5})],
        "import a 300-character image name": ["sessions", "import", export_file(
            tmp_path, {"images": [{"path": "images/" + "a" * 300 + ".png", "sha256": "a" * 64}]})],
        "undecodable argv bytes": ["complete", "--model", tiny, "--prompt", os.fsdecode(b"caf\xe9")],
        "seed 2^64": ["complete", "--model", tiny, "--prompt", "x", "--seed", str(2**64)],
        "temperature nan": ["complete", "--model", tiny, "--prompt", "x", "--temperature", "nan"],
        "timeout nan": ["endpoints", "add", "e", "http://127.0.0.1:9/v1", "--timeout", "nan"],
        "timeout inf": ["endpoints", "add", "e", "http://127.0.0.1:9/v1", "--timeout", "inf"],
        "timeout 1e-9": ["endpoints", "add", "e", "http://127.0.0.1:9/v1", "--timeout", "1e-9"],
        "threshold nan": ["sheet", "fill", str(csv), "--threshold", "nan"],
        "threshold 2": ["sheet", "fill", str(csv), "--threshold", "2"],
        "empty --session": ["complete", "--model", tiny, "--prompt", "x", "--session", ""],
    }


@pytest.fixture
def session_one():
    db = open_database()
    SessionStore(db).create("one")
    db.dispose()


CASES = list(cases(Path("/nonexistent"), "tiny"))


@pytest.mark.parametrize("case", CASES)
def test_each_known_failure_is_one_error_line(tiny_model_dir, tmp_path, capsys, session_one, case):
    argv = cases(tmp_path, str(tiny_model_dir))[case]
    assert main(argv) != 0
    one_error_line(capsys)
    paths.set_data_dir(None)


def test_a_non_latin1_api_key_is_refused_when_added(monkeypatch, capsys):
    monkeypatch.setenv("PLAYGROUND_NO_KEYRING", "1")
    monkeypatch.setattr("sys.stdin", io.StringIO("ключ-123\n"))
    assert main(["endpoints", "add", "e", "http://127.0.0.1:9/v1", "--api-key-stdin"]) == 1
    assert "printable ASCII" in one_error_line(capsys)
    assert main(["endpoints", "list", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []


def test_a_serve_key_no_client_could_send_is_refused(tiny_model_dir):
    # In a process of its own: before the fix it served (forever) with a key no HTTP client can send.
    proc = subprocess.run([sys.executable, "-m", "playground.cli", "serve", "--model", str(tiny_model_dir), "--port",
                           "0", "--api-key", "ключ"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "printable ASCII" in proc.stderr


def test_an_unwritable_out_is_said_before_the_fill(tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    csv = tmp_path / "t.csv"
    csv.write_text("Country,Capital\nFrance,Paris\nItaly,\n")
    # The model does not exist either: the --out problem must be the one reported, before any loading.
    assert main(["sheet", "fill", str(csv), "--model", str(tmp_path / "no-model"),
                 "--out", str(tmp_path / "a-file" / "out.csv")]) == 1
    assert "a-file/out.csv" in one_error_line(capsys)


def test_a_prompt_file_that_never_ends_is_refused(tmp_path):
    def cap_memory() -> None:  # unbounded, the read grew to 8.9 GB in 24 s: stop it at 4 GB instead
        resource.setrlimit(resource.RLIMIT_AS, (4 * 1024**3, 4 * 1024**3))

    proc = subprocess.run([sys.executable, "-m", "playground.cli", "complete", "--prompt-file", "/dev/zero"],
                          capture_output=True, text=True, timeout=120, preexec_fn=cap_memory)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "over 16 MB" in proc.stderr


def test_markdown_of_an_imported_session_with_odd_types_and_into_a_new_folder(tmp_path, capsys):
    db = open_database()
    store = SessionStore(db)
    s = store.create("old import")
    store.add_run(s.id, Run(mode="prompt", model_id="m", inputs={"prompt": 5},
                            outputs={"completions": ["str", 5]}))
    db.dispose()
    out = tmp_path / "new" / "folder" / "s.md"
    assert main(["sessions", "export", str(s.id), "--out", str(out)]) == 0
    assert "str" in out.read_text()
    db = open_database()
    SessionStore(db).remove(s.id)
    db.dispose()


def test_session_names_and_server_model_ids_cannot_drive_the_terminal(capsys, monkeypatch):
    db = open_database()
    SessionStore(db).create(f"Night{ESCAPES}shift")
    db.dispose()
    assert main(["sessions", "list"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    assert "Night\\x1b]0;owned\\x07\\x1b[2J\\x9b31mshift" in out

    def models(handler, _body):
        handler.send_json(200, {"object": "list", "data": [{"id": f"evil{ESCAPES}", "object": "model"}]})

    monkeypatch.setenv("PLAYGROUND_NO_KEYRING", "1")
    with Peer({("GET", "/v1/models"): models}) as peer:
        assert main(["endpoints", "add", "peer", peer.url]) == 0
        capsys.readouterr()
        assert main(["endpoints", "models", "peer"]) == 0
        out = capsys.readouterr().out
        assert main(["endpoints", "models", "peer", "--json"]) == 0
        as_json = capsys.readouterr().out
    assert "\x1b" not in out and "\x9b" not in out and "remote:peer/evil\\x1b]0;owned" in out
    assert "\x9b" not in as_json and json.loads(as_json)[0]["model"] == f"evil{ESCAPES}"


def test_a_name_is_found_as_it_was_stored(tiny_model_dir, capsys):
    for _ in range(2):
        assert main(["complete", "--model", str(tiny_model_dir), "--prompt", "x", "--max-tokens", "2",
                     "--session", "two  spaces", "--json"]) == 0
    capsys.readouterr()
    assert main(["sessions", "list", "--json"]) == 0
    assert [(s["name"], s["runs"]) for s in json.loads(capsys.readouterr().out)] == [("two spaces", 2)]


def test_a_run_that_fails_with_a_bug_is_still_recorded(tiny_model_dir, capsys, monkeypatch):
    from playground.runtime import runner

    def broken(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(runner.EngineRunner, "generate", broken)
    code = main(["complete", "--model", str(tiny_model_dir), "--prompt", "x", "--session", "bugs"])
    err = capsys.readouterr().err
    assert code == 70 and err.startswith("error: internal error") and "Traceback" not in err
    log = Path(err.split("details in ")[1].strip())
    assert "RuntimeError: something nobody expected" in log.read_text()
    assert main(["sessions", "export", "1", "--out", str(log.parent / "s.json")]) == 0
    (run,) = json.loads((log.parent / "s.json").read_text())["runs"]
    assert run["status"] == "failed" and "something nobody expected" in run["error"]


def test_sessions_delete_removes_a_session_for_good_and_says_so_for_an_unknown_id(capsys):
    db = open_database()
    store = SessionStore(db)
    bad = store.create("written before imports checked types")
    store.add_run(bad.id, Run(mode="prompt", model_id="m", outputs={"completions": ["str", 5]}))
    kept = store.create("kept")
    db.dispose()
    assert main(["sessions", "delete", str(bad.id)]) == 0
    capsys.readouterr()
    assert main(["sessions", "list", "--json"]) == 0
    assert [s["name"] for s in json.loads(capsys.readouterr().out)] == ["kept"]
    assert main(["sessions", "delete", str(bad.id)]) == 1
    assert str(bad.id) in one_error_line(capsys)
    assert kept.id != bad.id


def test_no_command_is_one_error_line_after_the_help(capsys):
    """Found by the CLI fuzz test: ``python -m playground.cli --dtype x`` printed the help and exited 2, silently."""
    assert main(["--dtype", "float32"]) == 2
    assert "no command given" in one_error_line(capsys)
    assert main([]) == 2
    captured = capsys.readouterr()
    assert "usage: playground" in captured.out and captured.err.startswith("error: no command given")
