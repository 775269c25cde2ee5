"""``playground compare``: the same prompt through several columns (model + settings), headless."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from playground.cli.options import add_generation_options, sampling, source_and_prompt
from playground.cli.sessions import session_name
from playground.errors import ParameterError
from playground.tasks.compare import MAX_COLUMNS, parse_column, parse_values, sweep


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("compare", parents=[common], help="the same prompt through several models / settings")
    p.add_argument("--column", action="append", default=[], metavar="SPEC",
                   help='one column, e.g. "model=ID,temperature=0.7,seed=3" (repeatable; its keys override the '
                        "options below)")
    p.add_argument("--sweep", metavar="KEY=V1,V2,...",
                   help='columns from one parameter\'s values, e.g. "temperature=0,0.5,1" or "model=a,b"')
    add_generation_options(p, "default model for columns without model= (default: embedded)")
    p.add_argument("--budget-mb", type=int, default=None,
                   help="memory for loaded models (default: half the RAM); least recently used are unloaded")
    p.add_argument("--json", action="store_true", help='print {"columns": [...]}, each in the complete --json shape')
    p.add_argument("--session", metavar="NAME", type=session_name,
                   help="record the comparison in this session (created if missing)")


def columns_of(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The columns from --column and --sweep (a sweep varies the first column, or the defaults)."""
    columns = [parse_column(text) for text in args.column]
    if args.sweep:
        key, sep, values = args.sweep.partition("=")
        if not sep:
            raise ParameterError('--sweep must look like KEY=V1,V2 (e.g. "temperature=0,1")')
        base = columns.pop(0) if len(columns) == 1 else {}
        columns += sweep(base, key.strip(), parse_values(key.strip(), values))
    if not columns:
        raise ParameterError("give at least one --column or a --sweep")
    if len(columns) > MAX_COLUMNS:
        raise ParameterError(f"at most {MAX_COLUMNS} columns")
    return columns


def run(args: argparse.Namespace, progress) -> int:  # noqa: ANN001 - the CLI's progress printer
    from playground.domain.jobs import Cancel
    from playground.models.embedded import EMBEDDED_ID
    from playground.runtime.model_pool import ModelPool, default_loader
    from playground.tasks.compare_run import run_columns
    from playground.tasks.compare_store import run_record

    defaults = {"model": args.model or EMBEDDED_ID, **sampling(args)}
    columns = columns_of(args)
    source, prompt = source_and_prompt(args)
    loader = default_loader(getattr(args, "device", None), getattr(args, "dtype", None))
    pool = ModelPool(loader, None if args.budget_mb is None else args.budget_mb * 2**20)
    cancel = Cancel()

    def started(i: int, model: str) -> None:
        print(f"[playground] column {i + 1}/{len(columns)}: {model}", file=sys.stderr, flush=True)

    def stream(i: int, event) -> None:  # noqa: ANN001 - a TokenEvent
        if not args.json:
            sys.stdout.write(event.text)
            sys.stdout.flush()

    def done(outcome) -> None:  # noqa: ANN001 - a ColumnOutcome
        if not args.json:
            print(f"\n[error: {outcome.error}]" if outcome.error else "\n", flush=True)

    try:
        # Streamed text of columns running at once would interleave: remote columns run concurrently with --json.
        outcomes = run_columns(pool, columns, defaults, source, prompt, cancel, started, stream, done, progress,
                               concurrent_remote=args.json)
    except KeyboardInterrupt:
        cancel.set()
        raise
    except Exception as exc:  # a bug: the comparison is still recorded as failed before the error is shown
        if args.session is not None:
            error = f"Internal error: {type(exc).__name__}: {exc}"
            _record(args.session, run_record(source, prompt, columns, defaults,
                                             [{"model": str(c.get("model") or defaults["model"]), "error": error}
                                              for c in columns]))
        raise
    finally:
        pool.unload_all()
    if args.session is not None:
        _record(args.session, run_record(source, prompt, columns, defaults, [o.to_json() for o in outcomes]))
    if args.json:
        print(json.dumps({"columns": [o.to_json() for o in outcomes]}, ensure_ascii=False))
    return 1 if all(o.error for o in outcomes) else 0


def _record(session: str, run) -> None:  # noqa: ANN001 - a store Run
    from playground.cli import sessions as sessions_cli

    sessions_cli.record(session, run)
