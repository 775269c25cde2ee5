"""Fuzz: CSV input to ``sheet fill`` and ``sheet eval`` on a tiny model. A small table is mutated (separators,
quotes, NULs, CRs, BOMs, invalid UTF-8, huge or formula cells, ragged rows, empty or header-only files), seeded;
every outcome is a filled table or one ``error:`` line, the written CSV never starts a cell like a formula, and the
database keeps what it held."""

from __future__ import annotations

import csv
import io
import random
import time

from tests.fuzz.harness import check_database, check_outcome, run_cli, seed_database

SEED = 15
CASES = 70
BASE = "Country,Capital,Population\nFrance,Paris,67\nJapan,Tokyo,125\nItaly,,59\nKenya,Nairobi,\n"
PIECES = ['"', '""', ",", ";", "\t", "\r", "\r\n", "\n", "\x00", "\ufeff", "=1+1", "+cmd|' /C calc'!A0", "-2",
          "@SUM(A1)", "\x1b[2J", "😀", "\u202e", " ", "'", "Ünïcödé", "a" * 3000]
RAW = [b"\xff\xfe", b"\xc3\x28", b"\x80", b"\xef\xbb\xbf", b"\x00\x00"]


def mutate(rng: random.Random) -> bytes:
    text = BASE
    op = rng.random()
    if op < 0.05:
        return b""
    if op < 0.1:
        return BASE.splitlines()[0].encode()
    if op < 0.15:  # many columns
        return (",".join(f"c{i}" for i in range(300)) + "\n" + ",".join("x" for _ in range(299)) + ",\n").encode()
    for _ in range(rng.randrange(1, 5)):
        i = rng.randrange(len(text) + 1)
        text = text[:i] + rng.choice(PIECES) + text[i + rng.randrange(0, 3):]
    data = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.25:
        i = rng.randrange(len(data) + 1)
        data = data[:i] + rng.choice(RAW) + data[i:]
    return data


def test_mutated_tables(tmp_path, tiny_model_dir, data_home):
    before = seed_database()
    rng = random.Random(SEED)
    started, filled = time.monotonic(), 0
    for case in range(CASES):
        table = tmp_path / f"t{case}.{'tsv' if rng.random() < 0.1 else 'csv'}"
        table.write_bytes(mutate(rng))
        out = tmp_path / f"out{case}.csv"
        if rng.random() < 0.75:
            argv = ["sheet", "fill", str(table), "--model", str(tiny_model_dir), "--out", str(out), "--batch", "4"]
        else:
            argv = ["sheet", "eval", str(table), "--column", rng.choice(["Capital", "Population", "Nope"]),
                    "--model", str(tiny_model_dir), "--shots", "0,1", "--queries", "2", "--json"]
        code, _out, err = run_cli(argv)
        check_outcome(argv, code, err)
        if code == 0 and out.exists():
            filled += 1
            for row in csv.reader(io.StringIO(out.read_text(encoding="utf-8"))):
                assert not [c for c in row if c[:1] in ("=", "+", "-", "@", "\t", "\r", "\n")], row
        if case % 10 == 0:
            check_database(before, data_home)
    check_database(before, data_home)
    assert filled > 10
    assert time.monotonic() - started < 60
