"""Our side of bench/vs_llamacpp.py: the same line protocol as llama_cpp_worker.py, in its own process (so its
peak RSS is its own). Reads {"tokens", "max_tokens"} lines; answers {"ttft_s", "tokens_per_s", "tokens",
"prompt_tokens", "rss_bytes"}. Greedy decode on the model's fast runner (prefill, then one step per token),
as the app's generation loop drives it. Usage: python engine_worker.py FOLDER|FILE.gguf PRECISION
(a GGUF loads directly, as the app loads it)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.memory import peak_rss_bytes  # noqa: E402


def main() -> None:
    import torch

    from playground.engine.gguf_text import load_gguf_text_model
    from playground.engine.text import load_text_model

    source, precision = Path(sys.argv[1]), sys.argv[2]
    started = time.perf_counter()
    load = load_gguf_text_model if source.suffix == ".gguf" else load_text_model
    tm = load(source.name, source, device="cpu", precision=precision)
    if tm.fast is None:
        raise SystemExit(f"{source.name} did not load on a fast path: {tm.path_reason}")
    print(json.dumps({"ready": True, "load_s": time.perf_counter() - started, "engine": tm.describe()}),
          flush=True)
    fast = tm.fast
    for line in sys.stdin:
        request = json.loads(line)
        ids, n = request["tokens"], request["max_tokens"]
        with torch.inference_mode():
            start = time.perf_counter()
            token = int(fast.prefill(0, ids, reuse=False).argmax())
            first = last = time.perf_counter()
            out = [token]
            while len(out) < n:
                token = int(fast.step([token], [0])[0].argmax())
                out.append(token)
                last = time.perf_counter()
        decode = (len(out) - 1) / (last - first) if len(out) > 1 and last > first else 0.0
        print(json.dumps({"ttft_s": first - start, "tokens_per_s": decode, "tokens": len(out),
                          "prompt_tokens": len(ids), "rss_bytes": peak_rss_bytes(), "ids": out}), flush=True)


if __name__ == "__main__":
    main()
