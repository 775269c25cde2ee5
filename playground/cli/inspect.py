"""``playground inspect`` (attention and layer-by-layer predictions of a prompt) and ``playground probe``
(continuation probabilities across a template's slot values), headless."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from playground.cli.options import read_text
from playground.domain.inspect import InspectRequest
from playground.tasks.probe import ProbeRequest, parse_continuations, parse_values


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("inspect", parents=[common],
                       help="attention weights and each layer's predictions for a prompt (eager attention)")
    p.add_argument("--model", default=None, help="model id (default: the embedded model)")
    p.add_argument("--source", type=Path, help="file whose text comes before the prompt")
    p.add_argument("--prompt", required=True, help="prompt text")
    p.add_argument("--new-tokens", type=int, default=0, help="continue greedily by this many tokens first")
    p.add_argument("--top", type=int, default=5, help="predictions per layer and position (default 5)")
    p.add_argument("--json", action="store_true",
                   help='print {"model", "tokens", "attention": {"layers", "heads", "weights"}, "lens"}')

    q = sub.add_parser("probe", parents=[common],
                       help="compare continuations' probabilities across a template's slot values")
    q.add_argument("--template", required=True, help="text with one slot, e.g. 'The {occupation} was a'")
    q.add_argument("--values", required=True, help="slot values, comma-separated: nurse,doctor,engineer")
    q.add_argument("--continuations", required=True,
                   help="continuations, comma-separated and kept as typed: ' man, woman'")
    q.add_argument("--model", default=None, help="model id (default: the embedded model)")
    q.add_argument("--json", action="store_true", help='print {"rows": [{"value", "continuation", "logprob"}]}')


def _load(args: argparse.Namespace, progress):  # noqa: ANN001, ANN202 - the CLI's progress printer; a TextModel
    from playground.models.embedded import EMBEDDED_ID
    from playground.runtime.inspection import load_for_inspection

    return load_for_inspection(args.model or EMBEDDED_ID, getattr(args, "device", None),
                               getattr(args, "dtype", None), progress)


def run_inspect(args: argparse.Namespace, progress) -> int:  # noqa: ANN001 - the CLI's progress printer
    from playground.engine.inspect.attention import inspect
    from playground.engine.inspect.lens import lens
    from playground.errors import ParameterError
    from playground.tasks.inspect_run import inspect_json, settles_at

    source = read_text(args.source, "source") if args.source else ""
    request = InspectRequest(prompt=args.prompt, source=source, new_tokens=args.new_tokens)
    request.validate()
    if not 1 <= args.top <= 50:
        raise ParameterError("--top must be between 1 and 50")
    tm = _load(args, progress)
    try:
        insp = inspect(tm, request, lens_positions=())
        everywhere = lens(tm, insp.hidden, range(len(insp)), top=args.top)
    finally:
        tm.unload()
    if args.json:
        print(json.dumps(inspect_json(insp, everywhere), ensure_ascii=False))
        return 0
    # Plain text: each position's token, the model's next-token guess and the layer from which it leads.
    print(f"{insp.model} · {len(insp)} tokens · {insp.layers} layers × {insp.heads} heads")
    for pos, token in enumerate(insp.tokens):
        layers = everywhere[pos]
        final = layers[-1].top[0]
        print(f"{pos:4d} {token!r:>16} → {final.text!r} {final.prob:.0%} (top from layer {settles_at(layers)})")
    return 0


def run_probe(args: argparse.Namespace, progress) -> int:  # noqa: ANN001 - the CLI's progress printer
    import math

    from playground.tasks.probe import engine_scorer, probe_json, run_probe

    request = ProbeRequest(args.template, parse_values(args.values), parse_continuations(args.continuations))
    request.validate()
    tm = _load(args, progress)
    started = time.perf_counter()
    try:
        rows = run_probe(request, engine_scorer(tm))
    finally:
        tm.unload()
    if args.json:
        print(json.dumps(probe_json(rows), ensure_ascii=False))
        return 0
    width = max(len(v) for v in request.values)
    print(f"{request.template!r} · {len(rows)} scores in {time.perf_counter() - started:.2f} s")
    for value in request.values:
        cells = [f"{r.continuation!r} {math.exp(r.logprob):.2%}" for r in rows if r.value == value]
        print(f"{value:>{width}}: " + "  ".join(cells))
    return 0
