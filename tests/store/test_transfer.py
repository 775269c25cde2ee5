"""Export and import: exact round trips, Markdown, and hostile files rejected without side effects."""

from __future__ import annotations

import hashlib
import json

import pytest

from playground import paths
from playground.store.records import Run
from playground.store.transfer import ImportRejected, export_dict, export_session, import_session


def filled(store):
    s = store.create("Capitals")
    store.save_draft(s.id, "prompt", {"source": "Country: France\nCapital: Paris\n", "prompt": "Country: Peru"})
    store.add_run(s.id, Run(mode="prompt", model_id="smollm2", params={"temperature": 0.0, "stop": ["\n"]},
                            inputs={"source": "Country: France\nCapital: Paris\n",
                                    "prompt": "Country: Italy\nCapital:"},
                            outputs={"completions": [{"text": " Rome", "finish_reason": "stop",
                                                      "tokens": [{"text": " Rome", "id": 5, "logprob": -0.19,
                                                                  "top": [{"text": " Rome", "id": 5,
                                                                           "logprob": -0.19}]}]}]},
                            timings={"load_s": 1.7, "ttft_s": 0.07, "tokens_per_s": 31.4}))
    store.add_run(s.id, Run(mode="prompt", model_id="smollm2", inputs={"prompt": "x"}, status="failed",
                            error="The prompt is too long"))
    return s


def test_export_then_import_round_trips_exactly(store, tmp_path):
    s = filled(store)
    out = export_session(store, s.id, tmp_path / "capitals.json")
    imported = import_session(store, out)
    assert imported.id != s.id
    assert export_dict(store, imported.id) == export_dict(store, s.id)
    assert [x.name for x in store.list()].count("Capitals") == 2


def test_folder_export_carries_images_by_reference(store, tmp_path):
    image = b"\x89PNG fake image bytes"
    digest = hashlib.sha256(image).hexdigest()
    rel = f"images/{digest}.png"
    (paths.data_dir() / "images").mkdir()
    (paths.data_dir() / rel).write_bytes(image)
    s = store.create("Pictures", mode="image")
    store.add_run(s.id, Run(mode="image", model_id="demo", inputs={"image_prompt": "a red circle"},
                            outputs={"images": [{"path": rel, "sha256": digest}]}))
    folder = tmp_path / "export"
    export_session(store, s.id, folder)
    assert (folder / rel).read_bytes() == image and (folder / "session.json").is_file()
    (paths.data_dir() / rel).unlink()
    imported = import_session(store, folder)
    assert (paths.data_dir() / rel).read_bytes() == image
    assert store.runs(imported.id)[0].outputs["images"][0]["path"] == rel


def hostile_cases():
    good = {"format": "playground-session", "version": 1,
            "session": {"name": "x", "mode": "prompt", "draft": {}},
            "runs": [{"mode": "prompt", "model_id": "m", "status": "done", "inputs": {}, "outputs": {}}]}

    def variant(path, value):
        data = json.loads(json.dumps(good))
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return data

    return {
        "wrong format": variant(["format"], "something-else"),
        "newer version": variant(["version"], 99),
        "name not a string": variant(["session", "name"], ["list"]),
        "runs not a list": variant(["runs"], {"a": 1}),
        "bad status": variant(["runs", 0, "status"], "pwned"),
        "inputs not an object": variant(["runs", 0, "inputs"], "text"),
        # every field's type, as the exporter writes it (issue 15, items 12 and 24)
        "completion not an object": variant(["runs", 0, "outputs"], {"completions": ["str", 5]}),
        "token logprob a string": variant(["runs", 0, "outputs"], {"completions": [
            {"text": "x", "tokens": [{"text": "x", "id": 1, "logprob": "high"}]}]}),
        "images not a list": variant(["runs", 0, "outputs"], {"images": 5}),
        "draft top_p not a number": variant(["session", "draft"], {"prompt": {"params": {"top_p": "z"}}}),
        "draft params not an object": variant(["session", "draft"], {"prompt": {"params": 5}}),
        "seed a string": variant(["runs", 0, "params"], {"seed": "42"}),
        # images are named by their content only (item 13)
        "image name not its hash": variant(["runs", 0, "outputs"], {"images": [{"path": f"images/{'1' * 64}.png",
                                                                               "sha256": "0" * 64}]}),
        "300-character image name": variant(["runs", 0, "outputs"], {"images": [
            {"path": f"images/{'a' * 300}.png", "sha256": "0" * 64}]}),
        "gallery path outside images": variant(["session", "draft"], {"image": {"gallery": [
            {"path": "/etc/passwd", "sha256": "0" * 64}]}}),
        "dotdot image path": variant(["runs", 0, "outputs"], {"images": [{"path": "images/../../evil.png",
                                                                         "sha256": "0" * 64}]}),
        "absolute image path": variant(["runs", 0, "outputs"], {"images": [{"path": "/etc/passwd",
                                                                           "sha256": "0" * 64}]}),
        "bad date": variant(["runs", 0, "created_at"], "yesterday"),
        "deep nesting": variant(["runs", 0, "params"], json.loads("[" * 100 + "]" * 100)),
    }


@pytest.mark.parametrize("case", list(hostile_cases()))
def test_hostile_json_is_rejected_and_nothing_is_written(store, tmp_path, case):
    file = tmp_path / "evil" / "session.json"
    file.parent.mkdir()
    file.write_text(json.dumps(hostile_cases()[case]))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(ImportRejected):
        import_session(store, file.parent)
    assert store.list() == []
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage", b"[" * 100_000])
def test_unreadable_files_are_rejected(store, tmp_path, content):
    file = tmp_path / "bad.json"
    file.write_bytes(content)
    with pytest.raises(ImportRejected):
        import_session(store, file)
    assert store.list() == []


def test_a_missing_file_is_a_clear_error(store, tmp_path):
    with pytest.raises(ImportRejected, match="Cannot read"):
        import_session(store, tmp_path / "nope.json")
