"""``playground serve`` (our model as an OpenAI-compatible server) and ``playground endpoints`` (remote servers).

Wired into ``playground.cli`` with ``add_parsers(sub, common)``; ``run_serve`` and ``run_endpoints`` execute them.
"""

from __future__ import annotations

import argparse
import os
import sys

from playground.cli.output import printable, to_json
from playground.errors import KnownError, ParameterError

ENV_SERVE_KEY = "PLAYGROUND_SERVE_API_KEY"  # keeps the key out of the process list
DEFAULT_PORT = 8000


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("serve", parents=[common], help="serve a model as an OpenAI-compatible API (/v1/...)")
    s.add_argument("--model", default=None, help="model id (default: the embedded model)")
    s.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any free)")
    s.add_argument("--api-key", default=os.environ.get(ENV_SERVE_KEY),
                   help=f"require 'Authorization: Bearer KEY' (or set ${ENV_SERVE_KEY})")
    s.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="let browser pages from ORIGIN call it (http://localhost:* and http://127.0.0.1:* always "
                        "may; '*' for any); repeatable")
    s.add_argument("--max-queue", type=int, default=None,
                   help="requests running or waiting at once before new ones get 503 (default 64)")

    e = sub.add_parser("endpoints", parents=[common], help="OpenAI-compatible servers to use as remote:NAME/MODEL")
    esub = e.add_subparsers(dest="endpoints_command", required=True)
    add = esub.add_parser("add", parents=[common], help="add (or update) an endpoint")
    add.add_argument("name", help="short name: models become remote:NAME/MODEL")
    add.add_argument("url", help="base URL, e.g. http://127.0.0.1:8000/v1")
    add.add_argument("--model", default="", help="default model (remote:NAME alone uses it)")
    add.add_argument("--api-key-stdin", action="store_true", help="read the API key from standard input")
    add.add_argument("--timeout", type=float, default=None, help="read timeout in seconds (default 120)")
    lst = esub.add_parser("list", parents=[common], help="the saved endpoints (keys are never shown)")
    lst.add_argument("--json", action="store_true")
    rm = esub.add_parser("remove", parents=[common], help="forget an endpoint and delete its key")
    rm.add_argument("name")
    models = esub.add_parser("models", parents=[common], help="ask an endpoint's server for its models")
    models.add_argument("name")
    models.add_argument("--json", action="store_true")


# -- serve ----------------------------------------------------------------------------------------------------------
def run_serve(args: argparse.Namespace, progress) -> int:  # noqa: ANN001 - the CLI's progress printer
    from playground.models.embedded import EMBEDDED_ID
    from playground.models.endpoints import check_key
    from playground.remote.serve_app import ServeApp, is_loopback
    from playground.remote.server import PlaygroundServer
    from playground.runtime.runner import EngineRunner

    host = args.host or "127.0.0.1"
    from playground.remote.cors import check_origin
    from playground.remote.scheduler import DEFAULT_MAX_QUEUE

    if not 0 <= args.port <= 65535:
        raise ParameterError("--port must be between 0 and 65535")
    max_queue = DEFAULT_MAX_QUEUE if args.max_queue is None else args.max_queue
    if not 1 <= max_queue <= 10_000:
        raise ParameterError("--max-queue must be between 1 and 10000")
    try:
        origins = tuple(check_origin(o) for o in args.cors_origin)
    except ValueError as exc:
        raise ParameterError(f"--cors-origin: {exc}") from exc
    if args.api_key:
        check_key(args.api_key)  # a key no client can send in a header would lock everyone out
    if not is_loopback(host):
        guard = "it requires the API key" if args.api_key else "anyone who can reach it can use it (no --api-key)"
        print(f"[playground] warning: listening on {host}, not only this machine: {guard}", file=sys.stderr)
    model_id = args.model or EMBEDDED_ID
    runner = EngineRunner(device=getattr(args, "device", None), dtype=getattr(args, "dtype", None))
    try:
        try:  # bind before loading: a taken port is said at once, not after the model loads
            app = ServeApp(runner, model_id, args.api_key, cors_origins=origins, max_queue=max_queue)
            server = PlaygroundServer(app, host, args.port)
        except OSError as exc:
            raise KnownError(f"Cannot listen on {host}:{args.port} ({exc.strerror or exc}); pick another --port "
                             "or --host") from exc
        try:
            info = runner.load(model_id, progress).result()
            print(f"[playground] serving {server.app.name} ({info.device}) at {server.url} — OpenAI-compatible; "
                  "Ctrl+C stops", file=sys.stderr, flush=True)
            print(server.url, flush=True)  # alone on stdout, for scripts
            server.serve_forever()
        except KeyboardInterrupt:
            print("[playground] stopping", file=sys.stderr)
        finally:
            server.stop()
    finally:
        runner.shutdown()
    return 0


# -- endpoints ------------------------------------------------------------------------------------------------------
def run_endpoints(args: argparse.Namespace) -> int:
    from playground.models.endpoints import DEFAULT_TIMEOUT_S, KEEP, Endpoint, EndpointStore

    store = EndpointStore()
    command = args.endpoints_command
    if command == "add":
        key = KEEP
        if args.api_key_stdin:
            key = sys.stdin.readline().strip()
            if not key:
                raise KnownError("--api-key-stdin: no key on standard input")
        existing = next((e for e in store.list() if e.name == args.name.strip()), None)
        timeout = args.timeout if args.timeout is not None else (existing.timeout_s if existing else
                                                                DEFAULT_TIMEOUT_S)
        saved = store.save(Endpoint(args.name, args.url, args.model, timeout), api_key=key)
        where = {"keyring": "key in the OS keyring", "file": "key in a private file (0600)"}.get(saved.key_store,
                                                                                               "no API key")
        print(f"{'updated' if existing else 'added'} {saved.name}: {saved.base_url} ({where})")
        return 0
    if command == "remove":
        store.remove(args.name)
        print(f"removed {args.name}")
        return 0
    if command == "models":
        from playground.domain.models import remote_id
        from playground.remote.backend import client_for

        endpoint = store.get(args.name)
        listed = client_for(endpoint, store).list_models()
        if args.json:
            print(to_json([{"id": remote_id(endpoint.name, m.id), "model": m.id, "owned_by": m.owned_by}
                           for m in listed]))
        else:
            for m in listed:  # ids come from the server: escapes in them are shown, never sent to the terminal
                print(printable(remote_id(endpoint.name, m.id)))
        return 0
    endpoints = store.list()
    if args.json:
        print(to_json([e.as_dict() for e in endpoints]))
        return 0
    if not endpoints:
        print("no endpoints; add one with: playground endpoints add NAME URL [--model M] [--api-key-stdin]")
    for e in endpoints:
        key = {"keyring": "key: keyring", "file": "key: file"}.get(e.key_store, "no key")
        model = f"remote:{e.name}/{e.model}" if e.model else f"remote:{e.name}/MODEL"
        print(printable(f"{e.name:16} {e.base_url:40} {model:40} {key}"))
    return 0
