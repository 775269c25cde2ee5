"""The headless CLI keeps its JSON contract and reports errors on one stderr line."""

from __future__ import annotations

import json

from playground.cli.main import main


def test_complete_json_shape(tiny_model_dir, capsys):
    code = main(["complete", "--model", str(tiny_model_dir), "--prompt", "hello", "--temperature", "0",
                 "--max-tokens", "8", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"model", "text", "finish_reason", "tokens", "timings"}
    assert data["finish_reason"] in {"stop", "length", "cancelled"}
    assert set(data["timings"]) == {"load_s", "ttft_s", "tokens_per_s"}
    assert data["tokens"] and all(set(t) == {"text", "logprob", "top"} for t in data["tokens"])
    assert all(set(a) == {"text", "logprob"} for a in data["tokens"][0]["top"])
    assert "".join(t["text"] for t in data["tokens"]) == data["text"]


def test_complete_reads_source_and_prompt_files_and_streams_text(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "src.txt").write_text("The quick ")
    (tmp_path / "prompt.txt").write_text("brown fox")
    main(["complete", "--model", str(tiny_model_dir), "--source", str(tmp_path / "src.txt"),
          "--prompt-file", str(tmp_path / "prompt.txt"), "--temperature", "0", "--max-tokens", "10", "--json"])
    from_files = json.loads(capsys.readouterr().out)["text"]
    main(["complete", "--model", str(tiny_model_dir), "--prompt", "The quick brown fox", "--temperature", "0",
          "--max-tokens", "10"])
    assert capsys.readouterr().out == from_files + "\n"


def test_seed_and_stop_options(tiny_model_dir, capsys):
    args = ["complete", "--model", str(tiny_model_dir), "--prompt", "abc", "--temperature", "1", "--seed", "5",
            "--max-tokens", "20", "--json"]
    main(args)
    first = json.loads(capsys.readouterr().out)
    main(args)
    assert json.loads(capsys.readouterr().out)["text"] == first["text"]
    stop = first["text"][5:7]
    main([*args, "--stop", stop])
    stopped = json.loads(capsys.readouterr().out)
    assert stopped["finish_reason"] == "stop" and stopped["text"] == first["text"][: first["text"].find(stop)]


def test_errors_are_one_line_on_stderr_with_nonzero_exit(tmp_path, capsys):
    assert main(["complete", "--model", str(tmp_path / "missing"), "--prompt", "x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert main(["complete", "--prompt", "x", "--top-p", "0"]) == 2
    assert "top-p" in capsys.readouterr().err
    assert main(["complete", "--prompt-file", str(tmp_path / "nope.txt")]) == 1
    assert "Cannot read prompt file" in capsys.readouterr().err


def test_models_json_and_add(tiny_model_dir, capsys, tmp_path):
    assert main(["models", "add", str(tiny_model_dir)]) == 0
    capsys.readouterr()
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    ids = [m["id"] for m in listed]
    assert ids[0] == "smollm2-135m-instruct" and tiny_model_dir.name in ids
    assert set(listed[0]) == {"id", "kind", "source", "path", "size_bytes", "ready"}


def test_data_dir_flag_overrides_env(tmp_path, capsys, tiny_model_dir):
    custom = tmp_path / "custom-home"
    assert main(["models", "--data-dir", str(custom), "add", str(tiny_model_dir)]) == 0
    assert (custom / "models.json").is_file()


def test_no_display_gives_a_clear_message_instead_of_a_qt_abort():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}}
    proc = subprocess.run([sys.executable, "-m", "ui.shell.app"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: no display found")
