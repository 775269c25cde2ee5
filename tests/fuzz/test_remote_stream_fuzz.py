"""Fuzz: what a remote server sends back. A peer answers ``complete --model remote:peer/m --session …`` with a
mutated stream or body (wrong JSON types, cut or garbled lines, missing ``[DONE]``, odd statuses and headers,
invalid UTF-8), seeded; each run ends with its text or one ``error:`` line, and is recorded without harming what the
database held."""

from __future__ import annotations

import json
import random
import time

from tests.fuzz.harness import check_database, check_outcome, run_cli, seed_database
from tests.remote.peers import Peer, completion_chunk

SEED = 15
CASES = 80
ODD = [None, True, 0, -1, 1e308, "", "x", [], {}, [None], {"a": 1}, "\x1b[2J", "😀", 2**64]
STATUSES = [200, 200, 200, 400, 401, 404, 413, 429, 500, 502, 503]


def good_chunks() -> list[dict]:
    lp = {"tokens": ["Par"], "token_logprobs": [-0.1], "top_logprobs": [{"Par": -0.1, "Lon": -2.0}],
          "text_offset": [0]}
    return [completion_chunk("Par", lp), completion_chunk("is", None), completion_chunk("", finish="stop")]


def mutate_chunk(chunk: dict, rng: random.Random) -> object:
    chunk = json.loads(json.dumps(chunk))
    op = rng.random()
    if op < 0.15:
        return rng.choice(ODD)
    choices = chunk.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else chunk
    target = rng.choice([chunk, choice, choice.get("logprobs") or choice])
    key = rng.choice([*target.keys(), "usage", "error"]) if target else "choices"
    if op < 0.75:
        target[key] = rng.choice(ODD)
    else:
        target.pop(key, None)
    return chunk


class Script:
    """One fuzz case's answer, chosen from the seeded generator before the request arrives."""

    def __init__(self, rng: random.Random) -> None:
        self.status = rng.choice(STATUSES)
        self.retry_after = rng.choice([None, "1", "-5", "nan", "Wed, 21 Oct 2099 07:28:00 GMT", "x" * 300])
        chunks: list[object] = good_chunks()
        for _ in range(rng.randrange(0, 3)):
            i = rng.randrange(len(chunks))
            chunks[i] = mutate_chunk(chunks[i], rng) if isinstance(chunks[i], dict) else chunks[i]
        lines = [json.dumps(c) for c in chunks]
        if rng.random() < 0.2:
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(["{not json", "", ":comment", "data", "\x00",
                                                                     "[DONE] trailing"]))
        if rng.random() < 0.8:
            lines.append("[DONE]")
        if rng.random() < 0.1:
            lines = lines * 20  # a stream that goes on past max_tokens
        self.lines = lines
        self.raw_tail = rng.choice([b"", b"", b"data: \xff\xfe\n\n",
                                    b'data: {"choices": [{"text": "\xc3"}]}\n\n'])
        self.body = rng.choice([{"error": {"message": "bad \x1b[2J", "type": "x"}}, {"error": "plain"}, [], "x",
                                {"choices": [{"text": 5}]}, {"choices": []}, {"error": {"message": 7}}])


def test_mutated_server_answers(tmp_path, data_home, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_NO_KEYRING", "1")
    before = seed_database()
    rng = random.Random(SEED)
    current: list[Script] = []

    def complete(handler, body) -> None:  # noqa: ANN001
        script = current[0]
        if script.status != 200:
            headers = {"Retry-After": script.retry_after} if script.retry_after else {}
            handler.send_json(script.status, script.body, headers)
            return
        if not body.get("stream"):
            handler.send_json(200, script.body if rng.random() < 0.5 else good_chunks()[0])
            return
        handler.start_sse()
        try:
            for line in script.lines:
                handler.sse(line)
            handler.wfile.write(script.raw_tail)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: its right
            pass

    def models(handler, _body) -> None:  # noqa: ANN001
        handler.send_json(200, {"object": "list", "data": [{"id": "m", "object": "model"}]})

    started, outcomes = time.monotonic(), set()
    with Peer({("POST", "/v1/completions"): complete, ("GET", "/v1/models"): models}) as peer:
        assert run_cli(["endpoints", "add", "peer", peer.url, "--timeout", "5"])[0] == 0
        for case in range(CASES):
            current[:] = [Script(rng)]
            argv = ["complete", "--model", "remote:peer/m", "--prompt", "Capital of France:", "--max-tokens", "4",
                    "--session", "remote fuzz", *(["--json"] if case % 2 else [])]
            code, _out, err = run_cli(argv)
            check_outcome(argv, code, err)
            outcomes.add(code)
            if case % 10 == 0:
                check_database(before, data_home)
    check_database(before, data_home)
    assert {0, 1} <= outcomes
    code, out, _err = run_cli(["sessions", "list", "--json"])
    runs = {s["name"]: s["runs"] for s in json.loads(out)}
    assert runs["remote fuzz"] == CASES  # every run recorded, done or failed
    assert time.monotonic() - started < 60
