"""``playground complete``: a raw completion of source text + prompt, streamed or as one JSON object."""

from __future__ import annotations

import argparse
import json
import sys

from playground.cli import sessions as sessions_cli
from playground.cli.options import add_generation_options, sampling, source_and_prompt
from playground.cli.progress import progress
from playground.domain.text import GenerationRequest
from playground.errors import KnownError


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    c = sub.add_parser("complete", parents=[common], help="raw completion of source text + prompt")
    add_generation_options(c, "model id, or remote:ENDPOINT/MODEL (default: the embedded model)")
    c.add_argument("--json", action="store_true", help="print one JSON object with tokens and timings")
    c.add_argument("--session", metavar="NAME", type=sessions_cli.session_name,
                   help="record the run in this session (created if missing)")


def run(args: argparse.Namespace) -> int:
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
        future = runner.generate(model_id, request, (lambda e: None) if args.json else stream, cancel, progress)
        result = future.result()
    except KeyboardInterrupt:
        cancel.set()
        result = future.result()
    except Exception as exc:  # known or not (a bug), a failed run is recorded before the error is shown
        if args.session is not None:
            error = str(exc) if isinstance(exc, KnownError) else f"Internal error: {type(exc).__name__}: {exc}"
            sessions_cli.record(args.session, run_from_result(request, None, "failed", error, model_id))
        raise
    finally:
        runner.shutdown()
    if args.session is not None:
        status = "cancelled" if result.first.finish_reason == "cancelled" else "done"
        sessions_cli.record(args.session, run_from_result(request, result, status))
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        print()
    return 0
