"""The ``playground`` command: no subcommand opens the window; subcommands run headless on the same engine."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from playground import __version__, paths
from playground.cli import compare as compare_cli
from playground.cli import complete as complete_cli
from playground.cli import image as image_cli
from playground.cli import inspect as inspect_cli
from playground.cli import layout as layout_cli
from playground.cli import models as models_cli
from playground.cli import remote as remote_cli
from playground.cli import sessions as sessions_cli
from playground.cli import sheet as sheet_cli
from playground.cli.progress import progress
from playground.errors import KnownError, ParameterError


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help="data folder (default: $PLAYGROUND_HOME "
                        "or the platform's user data dir)")
    common.add_argument("--device", default=argparse.SUPPRESS, help="auto | cpu | cuda | cuda:1 | mps")
    common.add_argument("--dtype", default=argparse.SUPPRESS, help="auto | float32 | float16 | bfloat16")
    common.add_argument("--precision", default=argparse.SUPPRESS,
                        help="decode weights on the CPU: auto (int4-a8 for models of 50M+ parameters) | fp32 | bf16 | "
                             "int8 | int4 | int4-a8 (default: $PLAYGROUND_PRECISION or auto)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(prog="playground", parents=[common],
                                     description="A local prompt playground. Without a command, opens the app.")
    parser.add_argument("--version", action="version", version=f"playground {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="smoke-test this install offscreen in a temporary data dir and exit")
    sub = parser.add_subparsers(dest="command")

    complete_cli.add_parser(sub, common)
    models_cli.add_parsers(sub, common)
    sessions_cli.add_parser(sub, common)
    sheet_cli.add_parser(sub, common)
    layout_cli.add_parser(sub, common)
    image_cli.add_parser(sub, common)
    compare_cli.add_parser(sub, common)
    inspect_cli.add_parsers(sub, common)
    remote_cli.add_parsers(sub, common)
    return parser


def main(argv: list[str] | None = None, open_window: Callable[..., int] | None = None) -> int:
    """Run a subcommand; without one, call ``open_window`` (the desktop app injects it: the core stays Qt-free)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "data_dir", None):
        paths.set_data_dir(args.data_dir)
    if getattr(args, "precision", None):
        from playground.engine.text import set_default_precision

        try:
            set_default_precision(args.precision)
        except KnownError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.command is None:
        if open_window is None:
            parser.print_help()
            return 2
        return open_window(device=getattr(args, "device", None), dtype=getattr(args, "dtype", None))
    try:
        handlers = {"complete": complete_cli.run, "models": models_cli.run_models, "setup": models_cli.run_setup,
                    "sessions": sessions_cli.run,
                    "sheet": sheet_cli.run, "layout": lambda a: layout_cli.run(a, progress),
                    "image": lambda a: image_cli.run(a, progress),
                    "compare": lambda a: compare_cli.run(a, progress),
                    "inspect": lambda a: inspect_cli.run_inspect(a, progress),
                    "probe": lambda a: inspect_cli.run_probe(a, progress),
                    "serve": lambda a: remote_cli.run_serve(a, progress), "endpoints": remote_cli.run_endpoints}
        return handlers[args.command](args)
    except ParameterError as exc:  # a parameter out of range: a usage error, like argparse's
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KnownError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
