"""``playground layout "DESCRIPTION"``: a page from a description, headless."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from playground.cli.files import check_writable, write_file
from playground.cli.options import finite_float
from playground.tasks.layout_html import build_prompt, clean, load_examples
from playground.tasks.layout_run import MAX_NEW_TOKENS, TEMPERATURE, layout_request


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("layout", parents=[common], help="describe a page, get its HTML")
    p.add_argument("description")
    p.add_argument("--model", default=None, help="model id (default: the embedded model)")
    p.add_argument("--out", type=Path, help="write the HTML to this file")
    p.add_argument("--max-tokens", type=int, default=MAX_NEW_TOKENS)
    p.add_argument("--temperature", type=finite_float, default=TEMPERATURE)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", action="store_true", help='print {"html", "valid", "model", "timings"}')


def run(args: argparse.Namespace, progress) -> int:  # noqa: ANN001 - the CLI's progress printer
    from playground.models.embedded import EMBEDDED_ID
    from playground.runtime.runner import EngineRunner

    prompt = build_prompt(args.description, load_examples())
    request = layout_request(prompt, max_new_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed)
    request.validate()
    if args.out:
        check_writable(args.out)
    runner = EngineRunner(device=getattr(args, "device", None), dtype=getattr(args, "dtype", None))
    try:
        result = runner.generate(args.model or EMBEDDED_ID, request, on_progress=progress).result()
    finally:
        runner.shutdown()
    page = clean(result.first.text)
    if args.out:
        write_file(args.out, page.html)
    if args.json:
        print(json.dumps({"html": page.html, "valid": page.valid, "model": result.model,
                          "timings": result.first.timings.as_dict()}, ensure_ascii=False))
    elif not args.out:
        print(page.html)
    if not page.valid:
        print(f"[playground] not valid HTML as written, repaired: {'; '.join(page.problems)}", file=sys.stderr)
    return 0
