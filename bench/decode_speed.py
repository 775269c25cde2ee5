"""Decode speed, time to first token, prefill, memory and quality: our engine at each precision vs transformers'
``generate`` and vs llama.cpp, measured in one run with alternating rounds (machine noise hits everyone).

    .venv/bin/python bench/decode_speed.py                      # ours vs generate (+ llama.cpp if built)
    .venv/bin/python bench/decode_speed.py --llama-cpp build    # build llama-cpp-python first (~12 min, cached)
    .venv/bin/python bench/decode_speed.py --random --device cuda   # random SmolLM2-shape model (GPU checks)

Each row is measured as it says: the "transformers generate" row's answers come from ``model.generate`` (compared
with the reference like every other row), each precision's peak RSS is measured at that precision in its own
process, perplexity runs over the whole varied text (~2,300 tokens, several genres; package data of
playground/engine/fast/quality.py). Writes bench/results/decode_speed.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.memory import peak_rss_bytes  # noqa: E402
from playground.domain.text import GenerationRequest  # noqa: E402
from playground.engine.fast import quality  # noqa: E402
from playground.engine.generate import generate  # noqa: E402
from playground.engine.text import load_text_model  # noqa: E402
from playground.models import embedded  # noqa: E402
from playground.models.registry import Registry  # noqa: E402
from playground.tasks.presets import load_presets  # noqa: E402

LLAMA_ENV = ROOT / "scripts" / "llama_cpp_env.sh"
RESULTS = ROOT / "bench" / "results" / "decode_speed.json"


def sync(tm) -> None:
    if tm.device.type == "cuda":
        torch.cuda.synchronize()


def hf_generate(tm, prompt: str, new_tokens: int) -> dict:
    """Greedy ``model.generate`` on transformers' own forward; TTFT from a 1-token call."""
    ids = tm.tokenizer(prompt, return_tensors="pt")["input_ids"].to(tm.device)
    kwargs = {"do_sample": False, "pad_token_id": tm.tokenizer.eos_token_id}
    with torch.inference_mode():
        sync(tm)
        start = time.perf_counter()
        tm.model.generate(ids, max_new_tokens=1, **kwargs)
        sync(tm)
        ttft = time.perf_counter() - start
        start = time.perf_counter()
        out = tm.model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **kwargs)
        sync(tm)
        total = time.perf_counter() - start
    n = out.shape[1] - ids.shape[1]
    return {"ttft_s": ttft, "tokens_per_s": (n - 1) / max(total - ttft, 1e-9), "tokens": n}


def engine(tm, prompt: str, new_tokens: int, source: str = "") -> dict:
    """``prompt`` is the whole text; one that starts with ``source`` is sent as source + the rest, as the Prompt tab
    sends it (the fast path reuses a cached prefix at the end of the source text)."""
    # EOS is not a stop here (min tokens, like the others): an impossible stop id keeps every run the same length.
    eos, tm.eos_ids = tm.eos_ids, frozenset()
    source = source if source and prompt.startswith(source) else ""
    try:
        result = generate(tm, GenerationRequest(source=source, prompt=prompt[len(source):], temperature=0,
                                                max_new_tokens=new_tokens)).first
    finally:
        tm.eos_ids = eos
    return {"ttft_s": result.timings.ttft_s, "tokens_per_s": result.timings.tokens_per_s,
            "tokens": len(result.tokens)}


def prefill_seconds(tm, prompt: str) -> float:
    ids = list(tm.tokenizer(prompt)["input_ids"])
    with torch.inference_mode():
        start = time.perf_counter()
        if tm.fast is not None:
            tm.fast.prefill(0, ids, reuse=False)
        else:
            tm.model(torch.tensor([ids], device=tm.device), logits_to_keep=1)
        sync(tm)
    return time.perf_counter() - start


class LlamaCpp:
    """A llama-cpp-python worker process (its own venv) answering one measurement per request."""

    def __init__(self, python: str, gguf: Path, threads: int) -> None:
        self.proc = subprocess.Popen([python, str(ROOT / "bench" / "llama_cpp_worker.py"), str(gguf), str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.load_s = json.loads(self.proc.stdout.readline())["load_s"]

    def run(self, prompt: str, new_tokens: int) -> dict:
        self.proc.stdin.write(json.dumps({"prompt": prompt, "max_tokens": new_tokens}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def llama_cpp_python(mode: str) -> str | None:
    """The cached llama-cpp-python venv's python; built only when ``mode`` is "build"."""
    if mode == "off":
        return None
    cache = Path(os.environ.get("PLAYGROUND_BENCH_CACHE", Path.home() / ".cache" / "playground-bench"))
    found = sorted(p / "bin" / "python" for p in cache.glob("llama-cpp-*") if (p / ".built").is_file())
    if found and mode != "build":
        return str(found[-1])
    if mode == "build":
        out = subprocess.run(["bash", str(LLAMA_ENV)], check=True, capture_output=True, text=True).stdout
        return out.strip().splitlines()[-1]
    return None


def load_model(model: str, precision: str, device: str | None = None, reference: bool = False) -> Any:
    """``model`` as the app loads it: a registered GGUF file directly, in its own quantized formats (``reference``:
    the same weights dequantized into transformers' fp32 forward), anything else from its folder. (A GGUF had been
    read through transformers' conversion to fp32 and re-quantized to int4: not what the app runs.)"""
    resolved = Registry().resolve(model, direct_gguf=True)
    if resolved.gguf is not None:
        from playground.engine.gguf_text import load_gguf_text_model

        return load_gguf_text_model(model, resolved.gguf, device=device, precision=precision,
                                    path_choice="transformers" if reference else "auto")
    return load_text_model(model, resolved.folder, device=device, precision=precision)


def rss_probe(model: str, precision: str) -> None:
    """Child-process mode: load at ``precision``, generate once, print peak RSS (bytes) as JSON."""
    tm = load_model(model, precision, device="cpu", reference=precision == "fp32")
    generate(tm, GenerationRequest(prompt="Hello", temperature=0, max_new_tokens=16))
    print(json.dumps({"rss_bytes": peak_rss_bytes()}))


def peak_rss(model: str, precision: str) -> int:
    out = subprocess.run([sys.executable, __file__, "--rss-probe", precision, "--model", model], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["rss_bytes"]


def kernel_info() -> dict:
    from playground.engine.fast import kernels

    kernels.available()
    return kernels.build_info()


def hf_greedy_answers(tm, prompts: list[str], max_new_tokens: int = 8) -> list[str]:
    """The few-shot answers as transformers' own ``generate`` gives them (greedy; first line of the output)."""
    answers = []
    with torch.inference_mode():
        for prompt in prompts:
            ids = tm.tokenizer(prompt, return_tensors="pt")["input_ids"].to(tm.device)
            out = tm.model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tm.tokenizer.eos_token_id)
            text = tm.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
            answers.append(text.split("\n", 1)[0].strip())
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default=embedded.EMBEDDED_ID)
    parser.add_argument("--precisions", default="int4,int8,fp32", help="ours, comma-separated (auto picks one)")
    parser.add_argument("--llama-cpp", default="auto", choices=["auto", "build", "off"],
                        help="auto: use the cached build if present; build: build it first; off: skip")
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--random", action="store_true",
                        help="a random model of SmolLM2-135M's shape instead (no weights needed: GPU checks)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--rss-probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_probe:
        return rss_probe(args.model, args.rss_probe)

    if args.random:
        from tests.tiny import SMOLLM2_135M, build_tiny_llama

        args.model = "random-smollm2-shape"
        folder = build_tiny_llama(Path(tempfile.mkdtemp()), vocab_size=49152, **SMOLLM2_135M)
    else:
        folder = None  # load_model resolves it as the app does
    cpu = args.device in (None, "cpu") and not torch.cuda.is_available()
    precisions = [p for p in args.precisions.split(",") if p] if cpu else ["auto"]
    models = {}
    for precision in precisions:
        started = time.perf_counter()
        tm = (load_text_model(args.model, folder, device=args.device, precision=precision) if folder
              else load_model(args.model, precision, args.device))
        models[f"ours {tm.precision}"] = (tm, time.perf_counter() - started)
    reference = (load_text_model(args.model, folder, device=args.device, precision="fp32") if folder
                 else load_model(args.model, "fp32", args.device, reference=True))
    reference.fast = None  # transformers' own forward
    preset = load_presets("prompt")[0]
    prompt = preset.fields["source"] + preset.fields["prompt"]
    long_prompt = " ".join([quality.PERPLEXITY_TEXT] * 6)
    n_prompt = len(reference.tokenizer(prompt)["input_ids"])
    n_long = min(500, len(reference.tokenizer(long_prompt)["input_ids"]))
    long_prompt = reference.tokenizer.decode(reference.tokenizer(long_prompt)["input_ids"][:n_long])
    threads = torch.get_num_threads()
    print(f"model {args.model} on {reference.device}, {threads} threads, {platform.processor() or platform.machine()}"
          f"; prompt {n_prompt} tokens, {args.tokens} new tokens, greedy, {args.rounds} alternating rounds")

    llama = None
    gguf = None
    python = llama_cpp_python(args.llama_cpp) if cpu and not args.random else None
    if python:
        gguf = embedded.gguf_file() if args.model == embedded.EMBEDDED_ID else None
        llama = LlamaCpp(python, gguf, threads) if gguf else None

    source = preset.fields["source"]
    runners = {name: (lambda p, n, tm=tm: engine(tm, p, n, source)) for name, (tm, _) in models.items()}
    runners["transformers generate"] = lambda p, n: hf_generate(reference, p, n)
    if llama:
        runners["llama.cpp"] = llama.run
    for run in runners.values():
        run(prompt, 8)  # warm-up
    rounds: dict[str, list[dict]] = {name: [] for name in runners}
    prefill: dict[str, list[float]] = {name: [] for name in runners}
    # "Change the prompt, keep the source": TTFT of another prompt right after one with the same source text.
    variant = preset.fields["source"] + preset.fields["prompt"].rstrip() + " and"
    reuse: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            rounds[name].append(run(prompt, args.tokens))
            reuse[name].append(run(variant, 1)["ttft_s"])
            if name == "llama.cpp":
                prefill[name].append(run(long_prompt, 1)["ttft_s"])
            else:
                prefill[name].append(prefill_seconds(models[name][0] if name in models else reference, long_prompt))

    rows = {}
    for name, runs in rounds.items():
        rows[name] = {"decode_tok_s": statistics.median(r["tokens_per_s"] for r in runs),
                      "ttft_ms": 1000 * statistics.median(r["ttft_s"] for r in runs),
                      "prefill_500_s": statistics.median(prefill[name]), "tokens": runs[-1]["tokens"],
                      "ttft_same_source_ms": 1000 * statistics.median(reuse[name])}
        if name == "llama.cpp":
            rows[name]["rss_mb"] = runs[-1]["rss_bytes"] / 2**20
            rows[name]["load_s"] = llama.load_s
    if cpu and not args.random:
        for name, (tm, load_s) in models.items():
            rows[name]["rss_mb"] = peak_rss(args.model, tm.precision) / 2**20  # at this row's precision
            rows[name]["load_s"] = load_s
            rows[name]["weights_read_mb"] = tm.fast.quantized_bytes() / 2**20 if tm.fast else None
        rows["transformers generate"]["rss_mb"] = peak_rss(args.model, "fp32") / 2**20
    if not args.no_quality:
        # The reference: transformers' fp32 forward through the app's generation loop (answers) and over the
        # whole varied text at once (perplexity). The "transformers generate" row is measured against it too:
        # its answers come from model.generate itself; its perplexity *is* the reference (no delta shown).
        ref_answers = quality.greedy_answers(reference, quality.few_shot_prompts())
        ref_ppl = quality.perplexity(reference)
        hf_answers = hf_greedy_answers(reference, quality.few_shot_prompts())
        rows["transformers generate"].update(agreement=quality.agreement(hf_answers, ref_answers),
                                             perplexity=ref_ppl, perplexity_is_reference=True)
        for name, (tm, _) in models.items():
            answers = quality.greedy_answers(tm, quality.few_shot_prompts())
            ppl = quality.perplexity(tm)
            ok = (quality.agreement(answers, ref_answers) >= quality.ANSWER_AGREEMENT_MIN
                  and abs(ppl / ref_ppl - 1) <= quality.PERPLEXITY_TOLERANCE)
            rows[name].update(agreement=quality.agreement(answers, ref_answers), perplexity=ppl, quality_ok=ok)
    if llama:
        llama.close()
    base = rows.get("llama.cpp") or rows["transformers generate"]
    base_name = "llama.cpp" if "llama.cpp" in rows else "generate"
    for row in rows.values():
        row[f"decode_vs_{base_name}"] = row["decode_tok_s"] / base["decode_tok_s"]
        row[f"prefill_vs_{base_name}"] = base["prefill_500_s"] / row["prefill_500_s"]
    n_ppl = len(reference.tokenizer(quality.varied_text())["input_ids"])
    report = {"model": args.model, "device": str(reference.device), "threads": threads, "prompt_tokens": n_prompt,
              "perplexity_text_tokens": n_ppl, "command": " ".join(["python", *sys.argv]),
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "python": platform.python_version(), "torch": torch.__version__},
              "engines": {name: tm.describe() for name, (tm, _) in models.items()},
              "new_tokens": args.tokens, "rounds": args.rounds, "int4_kernel": kernel_info(), "rows": rows,
              "baseline": base_name, "date": time.strftime("%Y-%m-%d")}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str))
    print_table(report)


def print_table(report: dict) -> None:
    base = report["baseline"]
    print(f"\n| engine | decode tok/s | × {base} | TTFT ms | TTFT, same source ms | prefill 500 tok s "
          f"| prefill × {base} | peak RSS MB | answers = fp32 | ppl Δ |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    ref_ppl = report["rows"]["transformers generate"].get("perplexity")
    for name, r in report["rows"].items():
        ppl = f"{r['perplexity'] / ref_ppl - 1:+.1%}" if ref_ppl and "perplexity" in r else "–"
        if r.get("perplexity_is_reference"):
            ppl = f"{r['perplexity']:.2f} (reference)"
        agree = f"{r['agreement']:.0%}" if "agreement" in r else "–"
        rss = f"{r['rss_mb']:.0f}" if r.get("rss_mb") else "–"
        print(f"| {name} | {r['decode_tok_s']:.1f} | {r[f'decode_vs_{base}']:.2f} | {r['ttft_ms']:.0f} | "
              f"{r['ttft_same_source_ms']:.0f} | "
              f"{r['prefill_500_s']:.2f} | {r[f'prefill_vs_{base}']:.2f} | {rss} | {agree} | {ppl} |")
    print(f"\nanswers: 20 few-shot prompts vs transformers' fp32 forward; perplexity over "
          f"{report.get('perplexity_text_tokens')} tokens of varied text (playground/engine/fast/data/varied_text.txt)")
    k = report["int4_kernel"]
    print(f"\nint4 kernel: loaded={k.get('loaded')} isa={k.get('isa', '-')} build {k.get('build_s') or 0:.1f} s "
          f"(first launch), cached load {k.get('load_s') or 0:.2f} s; {k.get('reason') or ''}")


if __name__ == "__main__":
    main()
