"""Prefill's arithmetic and quality: perplexity over the varied text (playground/engine/fast/data/varied_text.txt,
~2,300 tokens) with every position computed by the runner's prefill, at each quantized precision with prefill's
GEMM as the kernels run it by default (bf16 where the CPU has AVX512-BF16, int8 x on the AVX2 path) and in fp32
(``exact_fp32``), against transformers' fp32 forward on the embedded model. Shows what the reduced GEMM costs in
quality, apart from what the weights' rounding does. Results: bench/results/prefill_quality[_ISA].json.
Usage: .venv/bin/python bench/prefill_quality.py [--precisions int4,int4-a8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._results import isa_suffix, write_result  # noqa: E402


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
        reduced = int4_kernel.prefill_gemm()
    for precision in args.precisions.split(","):
        tm = load_text_model(embedded.EMBEDDED_ID, folder, device="cpu", precision=precision)
        # the -a8 layers multiply int8 x where the default GEMM is int16 (AVX2), all but the down projection
        label = "int8 GEMM (down projection int16)" if reduced == "int16" and precision.endswith("-a8") else \
            f"{reduced} GEMM"
        for gemm, exact in ((label, False), ("fp32 GEMM", True)):
            if reduced == "fp32" and not exact:
                continue
            with int4_kernel.exact_fp32(exact):
                ppl = quality.prefill_perplexity(tm)
            name = f"ours {precision}, {gemm}"
            rows[name] = {"perplexity": round(ppl, 4), "vs_reference_pct": round(100 * (ppl / reference - 1), 2)}
            print(f"{name}: perplexity {ppl:.4f} ({100 * (ppl / reference - 1):+.2f}% vs fp32)")
    write_result(f"prefill_quality{isa_suffix()}", {"model": embedded.EMBEDDED_ID, "threads": args.threads,
                                                     "bf16_gemm": reduced == "bf16", "prefill_gemm": reduced,
                                                     "rows": rows})


if __name__ == "__main__":
    main()
