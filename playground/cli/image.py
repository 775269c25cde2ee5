"""``playground image "PROMPT" --out FILE.png``: text to image, headless, on the same engine as the Image tab."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from playground.cli.files import check_writable, write_file
from playground.cli.options import finite_float
from playground.domain.image import ImageRequest
from playground.errors import ParameterError


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("image", parents=[common], help="generate an image from a text prompt")
    p.add_argument("prompt")
    p.add_argument("--out", type=Path, required=True, help="PNG file to write (FILE-1.png, FILE-2.png ... for a batch)")
    p.add_argument("--model", default=None, help="model id, folder, .safetensors file or HF id (default: demo-shapes)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--guidance", type=finite_float, default=None, help="CFG scale (0 or 1 = off)")
    p.add_argument("--negative", default="", help="negative prompt")
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--scheduler", default="default", help="default | Euler | 'Euler a' | 'DPM++ 2M' | DDIM | LCM")
    p.add_argument("--allow-pickle", action="store_true", help="allow .ckpt/.pt checkpoints (they can run code)")
    p.add_argument("--json", action="store_true", help='print {"files", "seed", "model", "timings"}')


def run(args: argparse.Namespace, progress) -> int:  # noqa: ANN001 - the CLI's progress printer
    from playground.domain.jobs import Cancel
    from playground.models.demo_image import DEMO_IMAGE_ID
    from playground.runtime.image_runner import ImageRunner
    from playground.tasks.image_meta import png_bytes

    if (args.width is None) != (args.height is None):
        raise ParameterError("give both --width and --height, or neither")
    request = ImageRequest(prompt=args.prompt, negative_prompt=args.negative, steps=args.steps, guidance=args.guidance,
                           seed=args.seed, width=args.width, height=args.height, batch=args.batch,
                           scheduler=args.scheduler)
    request.validate()
    check_writable(args.out)
    runner = ImageRunner(device=getattr(args, "device", None), dtype=getattr(args, "dtype", None),
                         allow_pickle=args.allow_pickle)
    cancel = Cancel()
    model_id = args.model or DEMO_IMAGE_ID
    future = runner.generate(model_id, request, cancel=cancel, on_progress=progress)
    try:
        result = future.result()
    except KeyboardInterrupt:
        cancel.set()
        future.result()
        raise
    finally:
        runner.shutdown()
    out: Path = args.out
    files = []
    for i, (image, seed) in enumerate(zip(result.images, result.seeds, strict=True)):
        path = out if len(result.images) == 1 else out.with_name(f"{out.stem}-{i + 1}{out.suffix or '.png'}")
        write_file(path, png_bytes(image, {**result.settings, "seed": seed}))
        files.append(str(path))
    if args.json:
        print(json.dumps({"files": files, "seed": result.seed, "model": result.model, "timings": result.timings},
                         ensure_ascii=False))
    else:
        for f in files:
            print(f)
        print(f"[playground] seed {result.seed}, {result.timings['s_per_step']:.3f} s/step", file=sys.stderr)
    return 0
