"""Fuzz: the CLI's arguments. Valid command lines of every command, each mutated (a value replaced by a nasty one,
an argument dropped or repeated, a stray option added), seeded, in this process (issue 15: a fuzz test per entry
point). ``serve`` is left out here (it would serve); its requests have their own fuzz test."""

from __future__ import annotations

import random
import time

import pytest

from tests.fuzz.harness import check_database, check_outcome, nasty, run_cli, seed_database

CASES = 600
SEED = 15


def templates(tiny: str, tmp: str) -> list[list[str]]:
    no_model = f"{tmp}/no-such-model"
    return [
        ["complete", "--model", tiny, "--prompt", "Hello", "--max-tokens", "2", "--temperature", "0"],
        ["complete", "--model", tiny, "--prompt", "Hi", "--max-tokens", "1", "--seed", "3", "--top-p", "0.5",
         "--top-k", "4", "--stop", ".", "--repetition-penalty", "1.1", "--session", "fuzz", "--json"],
        ["complete", "--model", no_model, "--prompt-file", f"{tmp}/prompt.txt", "--source", f"{tmp}/source.txt"],
        ["sessions", "list", "--json", "--search", "kept"],
        ["sessions", "export", "1", "--out", f"{tmp}/out/s.json"],
        ["sessions", "export", "2", "--out", f"{tmp}/out/s.md"],
        ["sessions", "import", f"{tmp}/export.json"],
        ["sessions", "delete", "999"],
        ["sheet", "fill", f"{tmp}/t.csv", "--model", tiny, "--threshold", "0.5", "--batch", "2", "--json"],
        ["sheet", "eval", f"{tmp}/t.csv", "--column", "Capital", "--model", no_model, "--shots", "0,1",
         "--queries", "1", "--tolerance", "0.05"],
        ["layout", "a page with a button", "--model", no_model, "--max-tokens", "4", "--out", f"{tmp}/p.html"],
        ["image", "a red circle", "--out", f"{tmp}/i.png", "--model", no_model, "--steps", "1", "--width", "64"],
        ["compare", "--model", no_model, "--model", tiny, "--prompt", "x"],
        ["inspect", "--model", tiny, "--prompt", "The cat", "--top", "2", "--json"],
        ["probe", "--model", tiny, "--template", "The {x} was", "--values", "a,b", "--continuations", " here"],
        ["endpoints", "add", "lab", "http://127.0.0.1:9/v1", "--timeout", "2", "--model", "m"],
        ["endpoints", "list", "--json"],
        ["endpoints", "models", "lab"],
        ["endpoints", "remove", "lab"],
        ["models", "--json"],
        ["--precision", "int4", "--device", "cpu", "sessions", "list"],
        ["--data-dir", f"{tmp}/other", "sessions", "list"],
    ]


def mutate(argv: list[str], rng: random.Random) -> list[str]:
    argv = list(argv)
    for _ in range(rng.randrange(1, 4)):
        op = rng.random()
        i = rng.randrange(len(argv))
        if op < 0.5 and i > 0:
            argv[i] = nasty(rng)
        elif op < 0.65 and len(argv) > 1:
            del argv[i]
        elif op < 0.8:
            argv.insert(i, argv[i])
        else:
            argv.insert(rng.randrange(len(argv) + 1), rng.choice(
                ["--json", "--max-tokens", "--data-dir", "--device", "--precision", "--dtype", "--help", "-x", "--"]))
            if rng.random() < 0.5:
                argv.insert(rng.randrange(len(argv) + 1), nasty(rng))
    return argv


@pytest.fixture
def world(tmp_path, tiny_model_dir, data_home, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_EMBEDDED_GGUF", str(tmp_path / "no.gguf"))  # the default model: fail, never fetch
    monkeypatch.setenv("PLAYGROUND_NO_KEYRING", "1")
    (tmp_path / "prompt.txt").write_text("Country: Italy\nCapital:")
    (tmp_path / "source.txt").write_text("Country: France\nCapital: Paris\n\n")
    (tmp_path / "t.csv").write_text("Country,Capital\nFrance,Paris\nItaly,\n")
    before = seed_database()
    assert run_cli(["sessions", "export", "1", "--out", str(tmp_path / "export.json")])[0] == 0
    return before


def test_mutated_command_lines(world, tmp_path, tiny_model_dir, data_home, monkeypatch):
    monkeypatch.setattr("sys.stdin", open("/dev/null"))  # noqa: SIM115 - --api-key-stdin reads nothing
    rng = random.Random(SEED)
    base = templates(str(tiny_model_dir), str(tmp_path))
    started, codes = time.monotonic(), set()
    for case in range(CASES):
        argv = mutate(rng.choice(base), rng)
        if "serve" in argv[:3]:
            continue
        code, _out, err = run_cli(argv)
        codes.add(code)
        check_outcome(argv, code, err)
        if case % 20 == 0:
            check_database(world, data_home)
    check_database(world, data_home)
    assert {0, 1, 2} <= codes  # the mutations reach success, user errors and usage errors alike
    assert time.monotonic() - started < 60
