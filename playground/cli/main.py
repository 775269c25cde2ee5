"""The ``playground`` command: no subcommand opens the window; subcommands run headless on the same engine."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

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
from playground.cli.output import printable
from playground.cli.progress import progress
from playground.errors import KnownError, ParameterError

DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,3})?")
EX_SOFTWARE = 70  # sysexits.h: an internal error (a bug)


class Parser(argparse.ArgumentParser):
    """argparse's usage errors as one ``error:`` line (argparse prints the usage block and its own prefix)."""

    def error(self, message: str) -> NoReturn:
        raise ParameterError(f"{message} (see: {self.prog} --help)")


def _common() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help="data folder (default: $PLAYGROUND_HOME "
                        "or the platform's user data dir)")
    common.add_argument("--device", default=argparse.SUPPRESS, help="auto | cpu | cuda | cuda:1 | mps")
    common.add_argument("--dtype", default=argparse.SUPPRESS, help="auto | float32 | float16 | bfloat16")
    common.add_argument("--precision", default=argparse.SUPPRESS,
                        help="decode weights on the CPU: auto (int4 for models of 50M+ parameters) | fp32 | bf16 | "
                             "int8 | int4 | int4-a8 (default: $PLAYGROUND_PRECISION or auto)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = Parser(prog="playground", parents=[common],
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
    """Run a subcommand; without one, call ``open_window`` (the desktop app injects it: the core stays Qt-free).

    Every failure ends as one ``error:`` line on stderr and a non-zero exit: 2 for a usage error, 1 for a problem
    the user can fix, 130 when interrupted, 70 for a bug (its traceback goes to a log file, named in the line)."""
    for stream in (sys.stdout, sys.stderr):  # text from files and servers must never make printing fail
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        return _run(argv, open_window)
    except ParameterError as exc:  # a parameter out of range: a usage error, like argparse's
        return _fail(exc, 2)
    except KnownError as exc:
        return _fail(exc, 1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `playground sessions list | head -1`: the reader left; nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # a bug: one line for the user, the traceback in a file for the report
        if os.environ.get("PLAYGROUND_DEBUG"):
            raise
        log = _crash_log()
        print(f"error: internal error, a bug in Playground ({type(exc).__name__}: {printable(exc)[:300]}); "
              f"details in {log}", file=sys.stderr)
        return EX_SOFTWARE


def _run(argv: list[str] | None, open_window: Callable[..., int] | None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    for i, arg in enumerate(args_in, start=1):
        if any("\udc80" <= ch <= "\udcff" for ch in arg):  # bytes that were not UTF-8 (os.fsdecode's escapes)
            raise ParameterError(f"argument {i} ({printable(os.fsencode(arg).decode('utf-8', 'backslashreplace'))}) "
                                 "is not valid UTF-8; Playground takes UTF-8 text and file names")
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "data_dir", None):
        paths.set_data_dir(args.data_dir)
    device = getattr(args, "device", None)
    if device is not None and not DEVICE.fullmatch(device):
        raise ParameterError(f"--device {device!r}: use auto, cpu, cuda, cuda:N or mps")
    if getattr(args, "precision", None):
        from playground.engine.text import set_default_precision

        try:
            set_default_precision(args.precision)
        except KnownError as exc:
            raise ParameterError(str(exc)) from exc
    if args.command is None:
        if open_window is None:  # `python -m playground.cli` alone: the commands, then why it stopped
            parser.print_help()
            raise ParameterError("no command given (the app opens with `playground` alone)")
        return open_window(device=device, dtype=getattr(args, "dtype", None))
    handlers = {"complete": complete_cli.run, "models": models_cli.run_models, "setup": models_cli.run_setup,
                "sessions": sessions_cli.run,
                "sheet": sheet_cli.run, "layout": lambda a: layout_cli.run(a, progress),
                "image": lambda a: image_cli.run(a, progress),
                "compare": lambda a: compare_cli.run(a, progress),
                "inspect": lambda a: inspect_cli.run_inspect(a, progress),
                "probe": lambda a: inspect_cli.run_probe(a, progress),
                "serve": lambda a: remote_cli.run_serve(a, progress), "endpoints": remote_cli.run_endpoints}
    return handlers[args.command](args)


def _fail(exc: BaseException, code: int) -> int:
    print(f"error: {printable(exc)}", file=sys.stderr)
    return code


def _crash_log() -> str:
    """Write the current exception's traceback to a log file; return where (the data dir's logs/, else temp)."""
    import tempfile
    import time
    import traceback

    text = f"playground {__version__} {time.strftime('%Y-%m-%d %H:%M:%S')}\n{traceback.format_exc()}"
    for folder in (lambda: paths.data_dir() / "logs", lambda: Path(tempfile.gettempdir())):
        try:
            where = folder()
            where.mkdir(parents=True, exist_ok=True)
            log = where / f"playground-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
            log.write_text(text, encoding="utf-8")
            return str(log)
        except Exception:  # noqa: BLE001 - the data dir itself may be what failed
            continue
    return "(no log could be written)"


if __name__ == "__main__":
    sys.exit(main())
