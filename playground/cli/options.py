"""Options and inputs shared by the commands that generate text (``complete``, ``compare``)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from playground.cli.files import read_text


def add_generation_options(p: argparse.ArgumentParser, model_help: str) -> None:
    """--model, --source, --prompt/--prompt-file and the sampling options, with the same defaults everywhere."""
    p.add_argument("--model", default=None, help=model_help)
    p.add_argument("--source", type=Path, help="file whose text comes before the prompt")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--prompt", help="prompt text")
    group.add_argument("--prompt-file", type=Path, help="file holding the prompt")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--temperature", type=finite_float, default=0.7, help="0 = greedy")
    p.add_argument("--top-p", type=finite_float, default=1.0)
    p.add_argument("--top-k", type=int, default=0, help="0 = off")
    p.add_argument("--repetition-penalty", type=finite_float, default=1.0)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--stop", action="append", default=[], help="stop sequence (repeatable)")


def source_and_prompt(args: argparse.Namespace) -> tuple[str, str]:
    """The --source file's text and the prompt (from --prompt or --prompt-file)."""
    source = read_text(args.source, "source") if args.source else ""
    prompt = args.prompt if args.prompt is not None else read_text(args.prompt_file, "prompt")
    return source, prompt


def sampling(args: argparse.Namespace) -> dict[str, Any]:
    """The sampling options as GenerationRequest fields."""
    return {"max_new_tokens": args.max_tokens, "temperature": args.temperature, "top_p": args.top_p,
            "top_k": args.top_k, "repetition_penalty": args.repetition_penalty, "seed": args.seed,
            "stop": tuple(args.stop)}


def finite_float(text: str) -> float:
    """argparse type: a finite number ("nan", "inf" and "1e999" are refused before anything loads)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite number")
    return value


def fraction(text: str) -> float:
    """argparse type: a number from 0 to 1."""
    value = finite_float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number from 0 to 1")
    return value
