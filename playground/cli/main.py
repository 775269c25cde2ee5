"""The ``playground`` command: no subcommand opens the window; subcommands run headless on the same engine."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from playground import __version__, paths
from playground.cli import compare as compare_cli
from playground.cli import image as image_cli
from playground.cli import layout as layout_cli
from playground.cli import remote as remote_cli
from playground.cli import sessions as sessions_cli
from playground.cli import sheet as sheet_cli
from playground.cli.options import add_generation_options, sampling, source_and_prompt
from playground.domain.jobs import ProgressEvent
from playground.domain.text import GenerationRequest
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

    c = sub.add_parser("complete", parents=[common], help="raw completion of source text + prompt")
    add_generation_options(c, "model id, or remote:ENDPOINT/MODEL (default: the embedded model)")
    c.add_argument("--json", action="store_true", help="print one JSON object with tokens and timings")
    c.add_argument("--session", metavar="NAME", help="record the run in this session (created if missing)")

    m = sub.add_parser("models", parents=[common], help="list the model registry")
    m.add_argument("--json", action="store_true")
    msub = m.add_subparsers(dest="models_command")
    add = msub.add_parser("add", parents=[common], help="register a model folder or a .gguf file")
    add.add_argument("path", type=Path)
    rm = msub.add_parser("remove", parents=[common], help="forget a user-added model")
    rm.add_argument("id")

    sub.add_parser("setup", parents=[common], help="fetch and convert the embedded model now")
    sessions_cli.add_parser(sub, common)
    sheet_cli.add_parser(sub, common)
    layout_cli.add_parser(sub, common)
    image_cli.add_parser(sub, common)
    compare_cli.add_parser(sub, common)
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
        handlers = {"complete": _complete, "models": _models, "setup": _setup, "sessions": sessions_cli.run,
                    "sheet": sheet_cli.run, "layout": lambda a: layout_cli.run(a, _progress),
                    "image": lambda a: image_cli.run(a, _progress),
                    "compare": lambda a: compare_cli.run(a, _progress),
                    "serve": lambda a: remote_cli.run_serve(a, _progress), "endpoints": remote_cli.run_endpoints}
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


_last_progress: tuple[str, int] = ("", -1)


def _progress(event: ProgressEvent) -> None:
    """Progress on stderr: one line per stage and per 25% step, so logs stay short."""
    global _last_progress
    step = -1 if event.fraction is None else int(event.fraction * 4)
    if (event.stage, step) == _last_progress:
        return
    _last_progress = (event.stage, step)
    pct = f" {event.fraction:4.0%}" if event.fraction is not None else ""
    print(f"[playground]{pct} {event.stage}", file=sys.stderr, flush=True)


def _complete(args: argparse.Namespace) -> int:
    from playground.domain.jobs import Cancel
    from playground.models.embedded import EMBEDDED_ID
    from playground.runtime.runner import EngineRunner
    from playground.store.records import run_from_result

    source, prompt = source_and_prompt(args)
    request = GenerationRequest(source=source, prompt=prompt, **sampling(args))
    request.validate()
    runner = EngineRunner(device=getattr(args, "device", None), dtype=getattr(args, "dtype", None))
    cancel = Cancel()

    def stream(event) -> None:  # noqa: ANN001 - a TokenEvent
        sys.stdout.write(event.text)
        sys.stdout.flush()

    model_id = args.model or EMBEDDED_ID
    try:
        future = runner.generate(model_id, request, (lambda e: None) if args.json else stream, cancel, _progress)
        result = future.result()
    except KeyboardInterrupt:
        cancel.set()
        result = future.result()
    except KnownError as exc:
        if args.session:
            sessions_cli.record(args.session, run_from_result(request, None, "failed", str(exc), model_id))
        raise
    finally:
        runner.shutdown()
    if args.session:
        status = "cancelled" if result.first.finish_reason == "cancelled" else "done"
        sessions_cli.record(args.session, run_from_result(request, result, status))
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        print()
    return 0


def _models(args: argparse.Namespace) -> int:
    from playground.models.registry import Registry

    registry = Registry()
    if args.models_command == "add":
        info = registry.add(args.path)
        print(f"added {info.id} ({info.source}, {info.path})")
        return 0
    if args.models_command == "remove":
        registry.remove(args.id)
        print(f"removed {args.id}")
        return 0
    models = registry.list()
    if args.json:
        print(json.dumps([m.as_dict() for m in models], ensure_ascii=False))
        return 0
    for m in models:
        state = "" if m.ready else "  (converted on first use)"
        print(f"{m.id:40} {m.kind:6} {m.source:9} {m.size_bytes / 1e6:9.1f} MB{state}")
    return 0


def _setup(args: argparse.Namespace) -> int:
    from playground.models.embedded import EMBEDDED_ID, ensure_embedded

    folder = ensure_embedded(_progress)
    print(f"embedded model ready in {folder}")
    # Build the int4 kernel and quantize the embedded model now, so the app's first load does not wait for them
    # (skipped, without importing torch, when done for this model and kernel source already).
    import time

    from playground.engine.fast import int4_kernel
    from playground.engine.text import AUTO_PRECISION, default_precision

    stamp = paths.data_dir() / "quantized" / ".prepared-embedded"
    key = f"{folder}|{int4_kernel.source_digest()}|{default_precision()}|{AUTO_PRECISION}"
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == key:
        return 0
    from playground.engine.text import load_text_model  # noqa: I001 - torch loads only when there is work

    started = time.perf_counter()
    if not int4_kernel.available():
        print(f"int4 kernel unavailable ({int4_kernel.unavailable_reason()}); torch's stock int4 path is used")
    tm = load_text_model(EMBEDDED_ID, folder, device="cpu")
    print(f"embedded model prepared at {tm.precision} in {time.perf_counter() - started:.1f} s")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(key, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
