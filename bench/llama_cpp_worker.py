"""llama.cpp side of bench/decode_speed.py; runs inside the llama-cpp-python venv (scripts/llama_cpp_env.sh).

Reads one JSON request per line on stdin ({"prompt" or "tokens", "max_tokens"}), answers one JSON line per request:
{"ttft_s", "tokens_per_s", "tokens", "prompt_tokens", "rss_bytes", "text"}. The prompt is fed once: ``generate``
is called on its tokens (a separate ``eval`` then ``generate(reset=False)`` feeds it twice and skews the figure).
Usage: PYTHON worker.py MODEL.gguf THREADS [CONTEXT]  (context: n_ctx, default 2048)
"""

from __future__ import annotations

import json
import sys
import time

from llama_cpp import Llama
from memory import peak_rss_bytes  # bench/memory.py: this script's folder is on sys.path


def main() -> None:
    path, threads = sys.argv[1], int(sys.argv[2])
    n_ctx = int(sys.argv[3]) if len(sys.argv) > 3 else 2048
    started = time.perf_counter()
    llm = Llama(model_path=path, n_ctx=n_ctx, n_batch=512, n_threads=threads, n_threads_batch=threads,
                verbose=False, logits_all=False)
    print(json.dumps({"ready": True, "load_s": time.perf_counter() - started}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        tokens = request.get("tokens") or llm.tokenize(request["prompt"].encode("utf-8"), add_bos=True)
        out: list[int] = []
        start = time.perf_counter()
        first = last = start
        for token in llm.generate(tokens, temp=0.0, top_k=1, reset=True):
            last = time.perf_counter()
            if not out:
                first = last
            out.append(token)
            if len(out) >= request["max_tokens"]:
                break
        decode = (len(out) - 1) / (last - first) if len(out) > 1 and last > first else 0.0
        rss = peak_rss_bytes()
        text = llm.detokenize(out).decode("utf-8", "replace")
        print(json.dumps({"ttft_s": first - start, "tokens_per_s": decode, "tokens": len(out),
                          "prompt_tokens": len(tokens), "rss_bytes": rss, "text": text, "ids": out}), flush=True)


if __name__ == "__main__":
    main()
