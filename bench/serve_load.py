"""``playground serve`` under load, started as a user would (``playground serve --port 0`` in a subprocess) on the
embedded model:

- throughput: 8 concurrent streaming clients vs the same 8 requests one at a time (total generated tokens/s). The
  server has no continuous batching yet: requests take turns on the one device, so expect a ratio near 1x;
- burst: 100 streaming clients released at the same instant;
- soak: 32 concurrent streaming clients for 60 s, counting connection resets and non-200 answers (issue 15, item
  21: the server used to reset ~13% of connections past a listen backlog of 5).

    .venv/bin/python bench/serve_load.py [--soak-s 60] [--clients 32]
    PYTHONPATH=/path/to/other/checkout .venv/bin/python bench/serve_load.py   # measure another version's server

Writes bench/results/serve_load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from _results import write_result  # bench/_results.py, beside this file

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "serve_load.json"
PROMPT = "Once upon a time, in a village by the sea, there lived an old fisherman who"
MODEL = "smollm2-135m-instruct"


def start_server() -> tuple[subprocess.Popen, str]:
    env = {**os.environ}
    proc = subprocess.Popen([sys.executable, "-c", "from playground.cli.main import main; raise SystemExit(main())",
                             "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    url = proc.stdout.readline().strip()  # printed once the model is loaded
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit("the server did not start")
    return proc, url


def stream_once(url: str, max_tokens: int, seed: int) -> int:
    """One streamed completion; the number of generated tokens (from usage)."""
    body = {"model": MODEL, "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0.8, "seed": seed,
            "stream": True, "stream_options": {"include_usage": True}}
    tokens = 0
    with httpx.stream("POST", f"{url}/completions", json=body, timeout=300) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}")
        for line in r.iter_lines():
            if line.startswith("data: {"):
                usage = json.loads(line[6:]).get("usage")
                if usage:
                    tokens = usage["completion_tokens"]
    return tokens


def throughput(url: str, clients: int, max_tokens: int) -> dict:
    started = time.perf_counter()
    one_by_one = sum(stream_once(url, max_tokens, seed) for seed in range(clients))
    sequential_s = time.perf_counter() - started
    counts: list[int] = []
    threads = [threading.Thread(target=lambda s=seed: counts.append(stream_once(url, max_tokens, s)))
               for seed in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    concurrent_s = time.perf_counter() - started
    seq_tps, conc_tps = one_by_one / sequential_s, sum(counts) / concurrent_s
    return {"clients": clients, "max_tokens": max_tokens, "one_at_a_time_tokens_per_s": round(seq_tps, 1),
            "concurrent_tokens_per_s": round(conc_tps, 1), "ratio": round(conc_tps / seq_tps, 2),
            "tokens": [one_by_one, sum(counts)]}


def soak(url: str, clients: int, seconds: float, max_tokens: int) -> dict:
    stop = time.monotonic() + seconds
    tally = {"ok": 0, "resets": 0, "http_errors": 0, "other_errors": 0}
    lock = threading.Lock()
    errors: list[str] = []

    def client(i: int) -> None:
        n = 0
        while time.monotonic() < stop:
            try:
                stream_once(url, max_tokens, i * 1000 + n)
                key = "ok"
            except (httpx.RemoteProtocolError, httpx.ReadError, ConnectionResetError) as exc:
                key = "resets"
                errors.append(f"{type(exc).__name__}: {exc}")
            except RuntimeError as exc:
                key = "http_errors"
                errors.append(str(exc))
            except Exception as exc:  # noqa: BLE001 - counted and shown
                key = "other_errors"
                errors.append(f"{type(exc).__name__}: {exc}")
            with lock:
                tally[key] += 1
            n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"clients": clients, "seconds": seconds, "max_tokens": max_tokens, **tally, "first_errors": errors[:5]}


def burst(url: str, clients: int) -> dict:
    """``clients`` streaming requests released at the same instant (a barrier), while the server is busy."""
    barrier = threading.Barrier(clients)
    tally = {"ok": 0, "resets": 0, "busy_503": 0, "errors": 0}
    lock = threading.Lock()

    def client(i: int) -> None:
        barrier.wait()
        try:
            stream_once(url, 4, i)
            key = "ok"
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError, ConnectionResetError):
            key = "resets"
        except RuntimeError as exc:  # past --max-queue (64): 503 + Retry-After, by design
            key = "busy_503" if "503" in str(exc) else "errors"
        except Exception:  # noqa: BLE001 - counted
            key = "errors"
        with lock:
            tally[key] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"clients": clients, **tally}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--soak-s", type=float, default=60)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    proc, url = start_server()
    try:
        stream_once(url, 4, 0)  # warm-up
        result: dict = {"server_code": os.environ.get("PYTHONPATH") or str(ROOT)}
        if not args.skip_throughput:
            result["throughput"] = throughput(url, 8, 48)
            t = result["throughput"]
            print(f"8 streaming clients: {t['concurrent_tokens_per_s']} tok/s together vs "
                  f"{t['one_at_a_time_tokens_per_s']} tok/s one at a time ({t['ratio']}x)")
        result["burst"] = b = burst(url, 100)
        print(f"100 clients at once: {b['ok']} ok, {b['resets']} resets, {b['busy_503']} busy (503), "
              f"{b['errors']} other errors")
        result["soak"] = s = soak(url, args.clients, args.soak_s, 8)
        print(f"{args.clients} clients for {args.soak_s:g} s: {s['ok']} ok, {s['resets']} resets, "
              f"{s['http_errors']} HTTP errors, {s['other_errors']} other")
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"wrote {write_result(args.out.stem, result, args.out.parent)}")


if __name__ == "__main__":
    main()
