"""``playground sheet transfer|train``: few-shot vs LoRA fine-tuning on a CSV, and saving a named adapter.

Wired into ``playground sheet`` by ``playground.cli.sheet`` (``add_parsers`` / ``run``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground.engine.lora import DEFAULT_EPOCHS, LoraSettings
from playground.tasks.sheet_eval import DEFAULT_QUERIES, parse_shots

if TYPE_CHECKING:
    from playground.engine.lora import TrainProgress
    from playground.tasks.sheet import Sheet
    from playground.tasks.sheet_transfer import TransferPlan, TransferProgress

COMMANDS = ("transfer", "train")


def add_parsers(ssub: argparse._SubParsersAction, common: argparse.ArgumentParser,
                model_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``transfer`` and ``train`` to the ``sheet`` subparsers (``model_args`` adds --model/--instruction)."""
    t = ssub.add_parser("transfer", parents=[common],
                        help="few-shot vs LoRA fine-tuning against the number of rows k (three curves)")
    t.add_argument("file", type=Path, help="CSV file with known values in --column")
    t.add_argument("--column", required=True, help="the column whose values are hidden and asked for")
    t.add_argument("--shots", default="0,1,2,4,8", help="values of k, comma-separated (default 0,1,2,4,8)")
    t.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="training epochs per k (default %(default)s)")
    t.add_argument("--seed", type=int, default=0, help="seed of the row shuffle and of training (default 0)")
    t.add_argument("--queries", type=int, default=DEFAULT_QUERIES,
                   help="held-out rows asked per k, at most (default %(default)s)")
    model_args(t)
    t.add_argument("--json", action="store_true",
                   help='print {"points": [{"k", "method", "accuracy", "train_s"}]}; accuracy is the numeric score '
                        "(within 5%%) for a numeric column, else the normalised match")

    r = ssub.add_parser("train", parents=[common], help="fine-tune a LoRA adapter on a CSV's rows and save it as "
                        "MODEL+ADAPTER, usable in every mode")
    r.add_argument("file", type=Path, help="CSV file (first row = column names)")
    r.add_argument("--column", required=True, help="the column the adapter learns to fill")
    r.add_argument("--name", required=True, help="the adapter's name (letters, digits, . _ -)")
    r.add_argument("--rows", type=int, default=None, help="train on the first N complete rows (default: all)")
    r.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="training epochs (default %(default)s)")
    r.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    model_args(r)


def run(args: argparse.Namespace, sheet: Sheet, load_model: Callable[..., Any]) -> int:
    """Execute ``sheet transfer`` or ``sheet train``; return the exit code. Raises KnownError for user errors."""
    from playground.models.embedded import EMBEDDED_ID

    settings = LoraSettings(epochs=args.epochs, seed=args.seed).check()
    if args.sheet_command == "transfer":
        from playground.tasks.sheet_transfer import plan_transfer

        plan = plan_transfer(sheet, args.column, parse_shots(args.shots), args.queries, args.seed)
        for note in plan.notes:
            print(f"[playground] {note}", file=sys.stderr)
        tm = load_model(args.model or EMBEDDED_ID, getattr(args, "device", None), getattr(args, "dtype", None))
        print(f"[playground] {tm.id} on {tm.device}: {len(plan.queries)} held-out rows, k = "
              f"{', '.join(map(str, plan.shots))}, {settings.epochs} epochs", file=sys.stderr, flush=True)
        return _transfer(args, tm, plan, settings)
    tm = load_model(args.model or EMBEDDED_ID, getattr(args, "device", None), getattr(args, "dtype", None))
    return _train(args, tm, sheet, settings)


def _transfer(args: argparse.Namespace, tm: Any, plan: TransferPlan, settings: LoraSettings) -> int:
    from playground.domain.jobs import Cancel
    from playground.tasks.sheet_transfer import LABELS, run_transfer

    cancel = Cancel()
    try:
        result = run_transfer(tm, plan, settings, _TransferPrinter(), cancel=cancel, batch_size=args.batch)
    except KeyboardInterrupt:
        cancel.set()
        print("[playground] interrupted", file=sys.stderr)
        return 130
    if result.cancelled:
        print("[playground] stopped before the end: the points so far follow", file=sys.stderr)
    if args.json:
        print(json.dumps({"points": [p.as_dict() for p in result.points]}, ensure_ascii=False))
        return 0
    metric = "numeric within 5%" if plan.numeric else "normalised match"
    print(f"column {plan.column_name!r}: accuracy ({metric}) on {len(plan.queries)} held-out rows, by k")
    print(f"{'method':18} {'k':>3}  {'accuracy':>8}  {'train s':>7}")
    for p in result.points:
        print(f"{LABELS[p.method]:18} {p.k:>3}  {p.accuracy:>8.0%}  {p.train_s:>7.1f}")
    return 0


def _train(args: argparse.Namespace, tm: Any, sheet: Sheet, settings: LoraSettings) -> int:
    from playground.domain.jobs import Cancel
    from playground.tasks.sheet_transfer import train_adapter

    cancel = Cancel()
    printer = _TransferPrinter()
    try:
        trained = train_adapter(tm, sheet, args.column, args.name, args.rows, settings, printer.step, cancel)
    except KeyboardInterrupt:
        cancel.set()  # the trainer is gone with the stack: nothing was saved
        print("[playground] interrupted: no adapter saved", file=sys.stderr)
        return 130
    if trained.info is None:
        print("[playground] stopped: no adapter saved", file=sys.stderr)
        return 1
    loss = f", final loss {trained.losses[-1]:.3f}" if trained.losses else ""
    print(f"[playground] trained on {trained.rows} rows in {trained.seconds:.1f} s{loss}", file=sys.stderr)
    print(trained.info.id)
    return 0


class _TransferPrinter:
    """Progress on stderr: each phase once, training every few steps (step, loss, ETA)."""

    def __init__(self) -> None:
        self._last = ""

    def __call__(self, p: TransferProgress) -> None:
        if p.train is not None and not self._due(p.train):
            return
        line = p.describe()
        if line != self._last:
            self._last = line
            print(f"[playground] {line}", file=sys.stderr, flush=True)

    def step(self, t: TrainProgress) -> None:
        if self._due(t):
            print(f"[playground] training step {t.step}/{t.steps} · loss {t.loss:.3f} · ETA {t.eta_s:.0f} s",
                  file=sys.stderr, flush=True)

    @staticmethod
    def _due(t: TrainProgress) -> bool:
        return t.step == 1 or t.step == t.steps or t.step % 5 == 0
