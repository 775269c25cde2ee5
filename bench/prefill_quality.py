"""Prefill's arithmetic and quality: perplexity over the varied text (playground/engine/fast/data/varied_text.txt,
~2,300 tokens) with every position computed by the runner's prefill, at each quantized precision with prefill's
GEMM in bf16 (the default where the CPU has AVX512-BF16) and in fp32 (``exact_fp32``), against transformers' fp32
forward on the embedded model. Shows what the bf16 GEMM costs in quality, apart from what the weights' rounding does.
Usage: .venv/bin/python bench/prefill_quality.py [--precisions int4,int4-a8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._results import write_result  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precisions", default="int4,int4-a8")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    from playground.engine.fast import int4_kernel, quality
    from playground.engine.text import load_text_model
    from playground.models import embedded

    torch.set_num_threads(args.threads)
    folder = embedded.ensure_embedded()
    reference = quality.prefill_perplexity(load_text_model(embedded.EMBEDDED_ID, folder, device="cpu",
                                                           path="transformers", dtype="float32"))
    rows = {"transformers fp32": {"perplexity": round(reference, 4)}}
    print(f"transformers fp32 forward: perplexity {reference:.4f} (the reference)")
    with int4_kernel.exact_fp32(False):
        bf16 = int4_kernel.gemm_bf16()
    for precision in args.precisions.split(","):
        tm = load_text_model(embedded.EMBEDDED_ID, folder, device="cpu", precision=precision)
        for gemm, exact in (("bf16 GEMM" if bf16 else "fp32 GEMM (no AVX512-BF16)", False), ("fp32 GEMM", True)):
            if not bf16 and not exact:
                continue
            with int4_kernel.exact_fp32(exact):
                ppl = quality.prefill_perplexity(tm)
            name = f"ours {precision}, {gemm}"
            rows[name] = {"perplexity": round(ppl, 4), "vs_reference_pct": round(100 * (ppl / reference - 1), 2)}
            print(f"{name}: perplexity {ppl:.4f} ({100 * (ppl / reference - 1):+.2f}% vs fp32)")
    write_result("prefill_quality", {"model": embedded.EMBEDDED_ID, "threads": args.threads, "bf16_gemm": bf16,
                                     "rows": rows})


if __name__ == "__main__":
    main()
