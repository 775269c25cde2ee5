"""``playground sheet fill|eval|transfer|train``: the Sheet mode headless, on the same filler the app uses.

``transfer`` and ``train`` (fine-tuning) live in ``playground.cli.sheet_transfer``.

Wired into ``playground.cli`` with ``add_parser(sub, common)`` and dispatched to ``run(args)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from playground.cli import sheet_transfer
from playground.cli.files import check_writable
from playground.cli.options import finite_float, fraction
from playground.cli.output import printable
from playground.cli.progress import progress
from playground.errors import KnownError
from playground.tasks.sheet import Sheet, fill_prompts, formula_cells, read_csv, to_csv, write_csv
from playground.tasks.sheet_eval import DEFAULT_QUERIES, DEFAULT_TOLERANCE, parse_shots, plan_eval, score

if TYPE_CHECKING:
    from playground.domain.sheet import CellAnswer
    from playground.engine.text import TextModel


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``sheet`` with its ``fill`` and ``eval`` subcommands to the ``playground`` subparsers; return it."""
    s = sub.add_parser("sheet", parents=[common], help="fill empty spreadsheet cells, or measure few-shot accuracy")
    ssub = s.add_subparsers(dest="sheet_command", required=True)

    f = ssub.add_parser("fill", parents=[common], help="complete the empty cells of a CSV from its complete rows")
    f.add_argument("file", type=Path, help="CSV file (first row = column names)")
    f.add_argument("--out", type=Path, help="write the filled CSV here (default: print it)")
    _model_args(f)
    f.add_argument("--threshold", type=fraction, default=0.0,
                   help="leave cells under this confidence (0-1) empty in the CSV (default 0: keep all)")
    f.add_argument("--json", action="store_true",
                   help='print {"cells": [{"row", "column", "value", "confidence", "top"}]} instead of the CSV')

    e = ssub.add_parser("eval", parents=[common], help="accuracy against the number of example rows k")
    e.add_argument("file", type=Path, help="CSV file with known values in --column")
    e.add_argument("--column", required=True, help="the column whose values are hidden and asked for")
    e.add_argument("--shots", default="0,1,2,4,8", help="values of k, comma-separated (default 0,1,2,4,8)")
    e.add_argument("--queries", type=int, default=DEFAULT_QUERIES, help="rows asked per k (default %(default)s)")
    e.add_argument("--tolerance", type=finite_float, default=DEFAULT_TOLERANCE,
                   help="relative tolerance for the numeric score (default %(default)s)")
    e.add_argument("--seed", type=int, default=0, help="seed of the row shuffle (default 0)")
    _model_args(e, repeat=True)
    e.add_argument("--json", action="store_true", help='print {"column", "points": [...], "notes": [...]}')
    sheet_transfer.add_parsers(ssub, common, _model_args)
    return s


def _model_args(parser: argparse.ArgumentParser, repeat: bool = False) -> None:
    if repeat:
        parser.add_argument("--model", action="append", default=None,
                            help="model id (repeatable to compare models; default: the embedded model)")
    else:
        parser.add_argument("--model", default=None, help="model id (default: the embedded model)")
    parser.add_argument("--instruction", action="append", default=[], metavar="COLUMN=TEXT",
                        help='a column\'s instruction, e.g. "Population=millions" (repeatable)')
    parser.add_argument("--batch", type=int, default=8, help="cells completed together (default 8)")


def run(args: argparse.Namespace) -> int:
    """Execute ``playground sheet ...``; return the exit code. Raises KnownError for user errors."""
    sheet = _load(args.file, args.instruction)
    if args.sheet_command == "fill":
        return _fill(args, sheet)
    if args.sheet_command in sheet_transfer.COMMANDS:
        return sheet_transfer.run(args, sheet, load_model)
    return _eval(args, sheet)


def _load(path: Path, instructions: list[str]) -> Sheet:
    loaded = read_csv(path)
    for warning in loaded.warnings:
        print(f"[playground] warning: {warning}", file=sys.stderr)
    sheet = loaded.sheet
    for item in instructions:
        name, sep, text = item.partition("=")
        if not sep or name.strip() not in sheet.columns:
            raise KnownError(f"--instruction {item!r}: expected COLUMN=TEXT with one of: {', '.join(sheet.columns)}")
        sheet.instructions[name.strip()] = text.strip()
    return sheet


def load_model(model_id: str, device: str | None = None, dtype: str | None = None) -> TextModel:
    """Resolve ``model_id`` through the registry (fetching or converting it first if needed) and load it; a
    ``remote:`` id gives a RemoteTextModel."""
    from playground.runtime.dispatch import load_model as load

    return load(model_id, device, dtype, progress)


def _fill(args: argparse.Namespace, sheet: Sheet) -> int:
    from playground.domain.jobs import Cancel
    from playground.engine.fill import DEFAULT_MAX_NEW_TOKENS
    from playground.models.embedded import EMBEDDED_ID
    from playground.runtime.dispatch import sheet_filler

    if args.out:
        check_writable(args.out)  # now, not after the whole fill
    prompts = fill_prompts(sheet)
    if not prompts:
        print("[playground] no empty cells to fill", file=sys.stderr)
    numeric = sheet.numeric_columns()
    answers: list[CellAnswer] = []
    if prompts:
        tm = load_model(args.model or EMBEDDED_ID, getattr(args, "device", None), getattr(args, "dtype", None))
        cancel = Cancel()

        def on_cell(a: CellAnswer) -> None:
            sure = "confidence not provided by this server" if a.confidence is None else f"{a.confidence:.0%}"
            column = printable(sheet.columns[a.column])
            print(f"[playground] {len(answers) + 1}/{len(prompts)} row {a.row + 1} {column}: {a.value!r} ({sure})",
                  file=sys.stderr, flush=True)
            answers.append(a)

        try:
            sheet_filler(tm, args.batch, DEFAULT_MAX_NEW_TOKENS).fill(prompts, on_cell, cancel, numeric)
        except KeyboardInterrupt:
            cancel.set()
            print("[playground] interrupted: writing the cells filled so far", file=sys.stderr)
    filled = Sheet(sheet.columns, [row[:] for row in sheet.rows], dict(sheet.instructions))
    for a in answers:
        if a.confidence is None or a.confidence >= args.threshold:  # unknown confidence: keep the value
            filled.rows[a.row][a.column] = a.value
    if args.out:
        write_csv(filled, args.out)
    guarded = formula_cells(filled)
    if guarded and not args.json:
        print(f"[playground] {guarded} cell(s) start like a spreadsheet formula (= + - @): written with a leading ' "
              "so spreadsheets show them as text, never run them (OWASP's CSV injection rule)", file=sys.stderr)
    if args.json:
        cells = sorted(answers, key=lambda a: (a.row, a.column))
        print(json.dumps({"cells": [a.to_json(sheet.columns[a.column]) for a in cells]}, ensure_ascii=False))
    elif not args.out:
        sys.stdout.write(to_csv(filled))
    return 0


def _eval(args: argparse.Namespace, sheet: Sheet) -> int:
    from playground.engine.fill import DEFAULT_MAX_NEW_TOKENS
    from playground.models.embedded import EMBEDDED_ID
    from playground.runtime.dispatch import sheet_filler

    plan = plan_eval(sheet, args.column, parse_shots(args.shots), args.queries, args.seed)
    for note in plan.notes:
        print(f"[playground] {note}", file=sys.stderr)
    points = []
    for model_id in args.model or [EMBEDDED_ID]:
        tm = load_model(model_id, getattr(args, "device", None), getattr(args, "dtype", None))
        print(f"[playground] {model_id}: {len(plan.cases)} questions over k = "
              f"{', '.join(map(str, plan.shots))}", file=sys.stderr, flush=True)
        result = sheet_filler(tm, args.batch, DEFAULT_MAX_NEW_TOKENS).fill(
            plan.prompts, numeric_columns=[plan.column] if plan.numeric else [])
        values = [None if a is None else a.value for a in result.answers]
        points += score(plan, model_id, values, args.tolerance)
        tm.unload()
    if args.json:
        print(json.dumps({"column": plan.column_name, "numeric": plan.numeric,
                          "points": [p.as_dict() for p in points], "notes": list(plan.notes)}, ensure_ascii=False))
        return 0
    numeric_head = f"  numeric±{args.tolerance:g}" if plan.numeric else ""
    print(f"column {plan.column_name!r}: accuracy by number of example rows k")
    print(f"{'model':32} {'k':>3} {'n':>4}  {'exact':>6}  {'normalised':>10}{numeric_head}")
    for p in points:
        num = f"  {p.numeric:>{len(numeric_head) - 2}.0%}" if p.numeric is not None else ""
        print(f"{p.model:32} {p.k:>3} {p.n:>4}  {p.exact:>6.0%}  {p.normalised:>10.0%}{num}")
    return 0
