"""Every mode with a remote model, as with a local one: the Prompt runner, sheet fill, compare (remote columns
concurrently), the CLI commands, images where the server offers them; and the key stays out of sessions."""

from __future__ import annotations

import base64
import io
import json
import threading

import pytest

from playground.cli import main as cli
from playground.domain.image import ImageRequest
from playground.domain.text import GenerationRequest
from playground.engine.fill import SheetFiller
from playground.errors import RemoteNotFound
from playground.runtime.dispatch import load_model, sheet_filler
from playground.runtime.model_pool import ModelPool
from playground.runtime.runner import EngineRunner
from playground.tasks.compare_run import run_columns
from playground.tasks.sheet import fill_prompts, to_csv
from tests.remote.conftest import add_endpoint
from tests.remote.peers import Peer
from tests.sheet.conftest import capitals

PROMPT = "Country: France\nCapital:"


def test_the_prompt_runner_loads_and_generates_remote(remote_model_id) -> None:
    runner = EngineRunner()
    try:
        info = runner.load(remote_model_id).result(30)
        assert info.model_id == remote_model_id and info.device == "remote (ours)"
        tokens = []
        result = runner.generate(remote_model_id, GenerationRequest(prompt=PROMPT, max_new_tokens=4,
                                                                    temperature=0), tokens.append).result(30)
        assert len(result.first.tokens) == 4 and tokens == list(result.first.tokens)
    finally:
        runner.shutdown()


def test_sheet_fill_matches_the_local_filler(remote_model_id, long_tiny_model) -> None:
    prompts = fill_prompts(capitals(empty=3))
    rm = load_model(remote_model_id)
    cells = []
    remote = sheet_filler(rm, batch_size=8, max_new_tokens=6).fill(prompts, cells.append)
    local = SheetFiller(long_tiny_model, max_new_tokens=6).fill(prompts)
    assert not remote.cancelled and len(cells) == 3
    for r, lo in zip(remote.answers, local.answers, strict=True):
        assert (r.row, r.column, r.value) == (lo.row, lo.column, lo.value)
        assert r.confidence == pytest.approx(lo.confidence, rel=1e-3, abs=1e-9)
        assert [g.text for g in r.top][:1] == [g.text for g in lo.top][:1]


def test_sheet_fill_cli_with_a_remote_model(remote_model_id, tmp_path, capsys) -> None:
    path = tmp_path / "capitals.csv"
    path.write_text(to_csv(capitals(empty=2)), encoding="utf-8")
    assert cli.main(["sheet", "fill", str(path), "--model", remote_model_id, "--json"]) == 0
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert [(c["row"], c["column"]) for c in cells] == [(10, "Capital"), (11, "Capital")]
    assert all(0 <= c["confidence"] <= 1 for c in cells)


def test_compare_runs_remote_columns_concurrently_beside_a_local_one(remote_model_id, long_tiny_dir) -> None:
    threads: dict[int, str] = {}
    outcomes = run_columns(
        ModelPool(), [{"model": remote_model_id}, {"model": remote_model_id, "temperature": 1.0, "seed": 3},
                      {"model": str(long_tiny_dir)}],
        {"max_new_tokens": 6, "temperature": 0.0}, "", PROMPT,
        on_start=lambda i, m: threads.__setitem__(i, threading.current_thread().name))
    assert [o.error for o in outcomes] == [None, None, None]
    assert [o.index for o in outcomes] == [0, 1, 2]
    assert threads[0].startswith("engine-remote") and threads[1].startswith("engine-remote")
    assert not threads[2].startswith("engine-remote")  # the local column stays on the calling (device) thread
    remote, local = outcomes[0].result.first, outcomes[2].result.first
    assert remote.text == local.text  # the same weights behind the server, greedy
    assert [t.logprob for t in remote.tokens] == pytest.approx([t.logprob for t in local.tokens], abs=1e-5)


def test_cli_complete_compare_and_layout_take_remote_ids(remote_model_id, capsys) -> None:
    assert cli.main(["complete", "--model", remote_model_id, "--prompt", PROMPT, "--max-tokens", "3",
                     "--temperature", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == remote_model_id and len(out["tokens"]) == 3 and out["tokens"][0]["top"]
    assert cli.main(["compare", "--prompt", PROMPT, "--max-tokens", "3", "--json", "--column",
                     f"model={remote_model_id},temperature=0", "--column", f"model={remote_model_id},seed=1"]) == 0
    assert [c["model"] for c in json.loads(capsys.readouterr().out)["columns"]] == [remote_model_id] * 2
    assert cli.main(["layout", "A heading Welcome", "--model", remote_model_id, "--max-tokens", "8",
                     "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == remote_model_id


def test_the_api_key_stays_out_of_the_session_db_and_exports(served_with_key, tmp_path, capsys) -> None:
    from playground import paths

    model = add_endpoint("keyed", served_with_key.url, served_with_key.model_id, api_key=served_with_key.api_key)
    assert cli.main(["complete", "--model", model, "--prompt", "hi", "--max-tokens", "2", "--session", "S",
                     "--json"]) == 0
    capsys.readouterr()
    assert cli.main(["sessions", "list", "--json"]) == 0
    (session,) = json.loads(capsys.readouterr().out)
    assert session["runs"] == 1
    out = tmp_path / "s.json"
    assert cli.main(["sessions", "export", str(session["id"]), "--out", str(out)]) == 0
    key = served_with_key.api_key.encode()
    assert b"remote:keyed/" in out.read_bytes() and key not in out.read_bytes()
    for f in paths.data_dir().rglob("*"):
        if f.is_file() and f.parent.name != "secrets":
            assert key not in f.read_bytes(), f


def _png_b64() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 8), (200, 30, 30)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_images_where_the_server_offers_them(remote_model_id) -> None:
    from playground.runtime.dispatch import generate_image as generate
    from playground.runtime.dispatch import load_image_model

    def images(handler, body) -> None:  # noqa: ANN001
        handler.send_json(200, {"created": 0, "data": [{"b64_json": _png_b64()} for _ in range(body["n"])]})

    with Peer({("POST", "/v1/images/generations"): images}) as peer:
        model = load_image_model(add_endpoint("painter", peer.url, "sdxl-turbo"))
        result = generate(model, ImageRequest(prompt="a red box", batch=2, width=16, height=8))
    assert len(result.images) == 2 and result.images[0].size == (16, 8)
    assert result.images[0].getpixel((0, 0)) == (200, 30, 30)
    assert peer.requests[-1][3] == {"model": "sdxl-turbo", "prompt": "a red box", "n": 2,
                                    "response_format": "b64_json", "size": "16x8"}
    # Our own serve offers text only: a clear message, not a bare 404.
    text_only = load_image_model(remote_model_id)
    with pytest.raises(RemoteNotFound, match="does not offer image generation"):
        generate(text_only, ImageRequest(prompt="a red box"))
