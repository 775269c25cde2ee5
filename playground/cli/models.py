"""``playground models [add|remove]`` and ``playground setup``: the registry, and preparing the embedded model."""

from __future__ import annotations

import argparse
from pathlib import Path

from playground import paths
from playground.cli.output import printable, to_json
from playground.cli.progress import progress


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    m = sub.add_parser("models", parents=[common], help="list the model registry")
    m.add_argument("--json", action="store_true")
    msub = m.add_subparsers(dest="models_command")
    add = msub.add_parser("add", parents=[common], help="register a model folder or a .gguf file")
    add.add_argument("path", type=Path)
    rm = msub.add_parser("remove", parents=[common], help="forget a user-added model, or delete a fine-tuned adapter")
    rm.add_argument("id")
    sub.add_parser("setup", parents=[common], help="fetch and convert the embedded model now")


def run_models(args: argparse.Namespace) -> int:
    from playground.models.registry import Registry

    registry = Registry()
    if args.models_command == "add":
        from playground.runtime.dispatch import add_model

        info, note = add_model(args.path, registry, progress)
        print(printable(f"added {info.id} ({info.source}, {info.path})"))
        if note:
            print(printable(note))
        return 0
    if args.models_command == "remove":
        registry.remove(args.id)
        print(f"removed {args.id}")
        return 0
    models = registry.list()
    if args.json:
        print(to_json([m.as_dict() for m in models]))
        return 0
    for m in models:
        state = f"  (missing: {m.path})" if m.missing else "" if m.ready else "  (prepared on first use)"
        print(printable(f"{m.id:40} {m.kind:6} {m.source:9} {m.size_bytes / 1e6:9.1f} MB{state}"))
    return 0


def run_setup(args: argparse.Namespace) -> int:
    from playground.models.embedded import EMBEDDED_ID, ensure_embedded

    folder = ensure_embedded(progress)
    print(f"embedded model ready in {folder}")
    # Build the int4 kernel and quantize the embedded model now, so the app's first load does not wait for them
    # (skipped, without importing torch, when done for this model and kernel source already).
    import time

    from playground.engine.fast import int4_kernel, kernels
    from playground.engine.text import AUTO_PRECISION, default_precision

    stamp = paths.data_dir() / "quantized" / ".prepared-embedded"
    key = f"{folder}|{int4_kernel.source_digest()}|{default_precision()}|{AUTO_PRECISION}"
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == key:
        return 0
    from playground.engine.text import load_text_model  # noqa: I001 - torch loads only when there is work

    started = time.perf_counter()
    if not kernels.prepare(progress):
        print(f"int4 kernel unavailable ({int4_kernel.unavailable_reason()}); torch's stock int4 path is used")
    tm = load_text_model(EMBEDDED_ID, folder, device="cpu", on_progress=progress)
    print(f"embedded model prepared at {tm.precision} in {time.perf_counter() - started:.1f} s")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(key, encoding="utf-8")
    return 0
