"""Fuzz: session import, from a JSON file and from a folder (session.json + images/). A real export of sessions of
every mode is mutated (a field's value replaced by another JSON type or a nasty value, a key dropped, the bytes cut
or corrupted, image files swapped), seeded; each is imported with ``playground sessions import``, and whatever is
accepted must list, export as JSON and as Markdown. Existing sessions and images stay as they were."""

from __future__ import annotations

import copy
import hashlib
import json
import random
import shutil
import time
from pathlib import Path

from playground import paths
from playground.store.db import open_database
from playground.store.records import Run
from playground.store.repository import SessionStore
from tests.fuzz.harness import check_database, check_outcome, content, nasty, run_cli, seed_database

SEED = 15
CASES = 220
VALUES = [None, True, False, 0, -1, 2**64, 1e308, -0.5, "", "x", "\x00\x1b[2J", "😀" * 50, [], {}, [1, "a", None],
          {"a": {"b": []}}, [[[[[]]]]], "images/../../x.png", "a" * 10_000]
PNG = b"\x89PNG\r\n\x1a\n fuzz image bytes"


def seed_all_modes(home: Path) -> dict:
    """Sessions of every mode with the fields their tabs read, and one stored image."""
    before = seed_database()
    images = home / "images"
    images.mkdir(exist_ok=True)
    digest = hashlib.sha256(PNG).hexdigest()
    (images / f"{digest}.png").write_bytes(PNG)
    ref = {"path": f"images/{digest}.png", "sha256": digest}
    db = open_database()
    store = SessionStore(db)
    s = store.create("all modes")
    token = {"text": " Rome", "id": 5, "logprob": -0.1, "top": [{"text": " Rome", "id": 5, "logprob": -0.1}]}
    runs = [
        Run(mode="prompt", model_id="m", params={"temperature": 0.7, "stop": ["\n"], "seed": 1,
                                                   "constraint": {"kind": "regex", "spec": "a+"}},
            inputs={"source": "s", "prompt": "p", "branch": {"root": "r", "parent": "r", "at": 0,
                                                            "alternative": "x", "prefix": ""}},
            outputs={"completions": [{"text": " Rome", "finish_reason": "stop", "tokens": [token],
                                      "timings": {"ttft_s": 0.1}}], "node": "n1"}),
        Run(mode="layout", model_id="m", inputs={"description": "d"}, outputs={"html": "<p>x</p>", "valid": True}),
        Run(mode="sheet", model_id="m", params={"shots": [0, 1]}, inputs={"kind": "eval",
            "sheet": {"header": ["a", "b"], "rows": [["1", ""]]}},
            outputs={"points": [{"model": "m", "k": 0, "n": 1, "exact": 0.5, "normalised": 0.5, "numeric": None}]}),
        Run(mode="image", model_id="demo", params={"prompt": "x", "steps": 2}, inputs={"prompt": "x"},
            outputs={"images": [ref], "seeds": [1]}),
        Run(mode="compare", model_id="m", inputs={"kind": "text", "prompt": "p", "columns": [{}]},
            outputs={"columns": [{"model": "m", "text": "t"}, None]}),
        Run(mode="inspect", model_id="m", inputs={"kind": "inspect", "prompt": "The cat"},
            outputs={"tokens": ["The", " cat"], "layers": 2, "heads": 2,
                     "last_lens": [{"layer": 0, "top": [{"text": " sat", "prob": 0.5}]}]}),
        Run(mode="inspect", model_id="m", inputs={"kind": "probe", "template": "The {x}"},
            outputs={"rows": [{"value": "a", "continuation": " b", "logprob": -1.5}]}),
    ]
    for run in runs:
        store.add_run(s.id, run)
    store.save_draft(s.id, "prompt", {"source": "s", "prompt": "p", "params": {"top_p": 0.9}})
    db.dispose()
    return before


def mutate_tree(data: object, rng: random.Random) -> object:
    data = copy.deepcopy(data)
    for _ in range(rng.randrange(1, 4)):
        parent, key = _random_slot(data, rng)
        if parent is None:
            return rng.choice(VALUES)
        op = rng.random()
        if op < 0.6:
            parent[key] = rng.choice(VALUES) if rng.random() < 0.7 else nasty(rng)
        elif op < 0.8 and isinstance(parent, dict):
            del parent[key]
        elif isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        else:
            parent[key] = [parent[key]]
    return data


def _random_slot(data: object, rng: random.Random) -> tuple[object, object]:
    """A random (container, key) somewhere in the tree, deeper ones as likely as shallow ones."""
    slots = []

    def walk(node: object) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for k, v in items:
            slots.append((node, k))
            walk(v)

    walk(data)
    return rng.choice(slots) if slots else (None, None)


def corrupt_bytes(raw: bytes, rng: random.Random) -> bytes:
    op = rng.random()
    if op < 0.3:
        return raw[: rng.randrange(len(raw))]
    if op < 0.6:
        i = rng.randrange(len(raw))
        return raw[:i] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8))) + raw[i:]
    if op < 0.8:
        return b"\xef\xbb\xbf" + raw.replace(b'"', b"'", 1)
    return raw.replace(b"1", b"1" * 400, 1)


def check_round_trip(new_ids: list[int], tmp: Path, case: int) -> None:
    for sid in new_ids:
        for suffix in (".json", ".md"):
            argv = ["sessions", "export", str(sid), "--out", str(tmp / f"re-{case}-{sid}{suffix}")]
            code, _out, err = run_cli(argv)
            check_outcome(argv, code, err)
            assert code == 0, f"an accepted import does not export: {err}"
    code, _out, err = run_cli(["sessions", "list", "--json"])
    assert code == 0, err


def test_mutated_exports_and_folders(tmp_path, data_home):
    paths.set_data_dir(None)
    seed_all_modes(data_home)
    before = content()
    stored = {p.name: p.read_bytes() for p in (data_home / "images").iterdir()}
    export = tmp_path / "base.json"
    folder = tmp_path / "base-folder"
    assert run_cli(["sessions", "export", "3", "--out", str(export)])[0] == 0
    assert run_cli(["sessions", "export", "3", "--out", str(folder)])[0] == 0
    base = json.loads(export.read_text(encoding="utf-8"))
    assert {r["mode"] for r in base["runs"]} == {"prompt", "layout", "sheet", "image", "compare", "inspect"}
    rng = random.Random(SEED)
    started, accepted, refused = time.monotonic(), 0, 0
    for case in range(CASES):
        known = set(content()["sessions"])
        if rng.random() < 0.7:  # a JSON file
            target = tmp_path / f"case-{case}.json"
            raw = json.dumps(mutate_tree(base, rng)).encode()
            target.write_bytes(corrupt_bytes(raw, rng) if rng.random() < 0.25 else raw)
        else:  # a folder: session.json and its images
            target = shutil.copytree(folder, tmp_path / f"case-{case}")
            data = json.loads((target / "session.json").read_text(encoding="utf-8"))
            (target / "session.json").write_text(json.dumps(mutate_tree(data, rng)), encoding="utf-8")
            image = next((target / "images").iterdir())
            op = rng.random()
            if op < 0.3:
                image.write_bytes(PNG + b"changed")
            elif op < 0.45:
                image.unlink()
                image.mkdir()
            elif op < 0.6:
                image.unlink()
                image.symlink_to("/etc/passwd")
        argv = ["sessions", "import", str(target)]
        code, _out, err = run_cli(argv)
        check_outcome(argv, code, err)
        new_ids = [i for i in content()["sessions"] if i not in known]
        if code == 0:
            accepted += 1
            check_round_trip(new_ids, tmp_path, case)
        else:
            refused += 1
            assert not new_ids, "a refused import left a session behind"
        if case % 25 == 0:
            check_database(before, data_home)
            assert {p.name: p.read_bytes() for p in (data_home / "images").iterdir() if p.name in stored} == stored
    check_database(before, data_home)
    assert {p.name: p.read_bytes() for p in (data_home / "images").iterdir() if p.name in stored} == stored
    assert accepted > 10 and refused > 10, (accepted, refused)
    assert time.monotonic() - started < 60
