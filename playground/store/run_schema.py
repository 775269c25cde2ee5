"""The types of every field the exporter writes and the app reads back, checked on import.

A spec is a Python type (``str``, ``int``, ``bool``; ``float`` means any number), ``None`` (null), ``ANY`` (any JSON
value), a tuple (one of), a one-item list (a list of that) or a dict (an object whose listed keys, all optional,
have those types; other keys are kept as they are, so a newer export's extra fields pass). ``check`` raises
ImportRejected naming the first field that does not fit, e.g. ``$.runs[3].outputs.completions[1]: expected an
object``.
"""

from __future__ import annotations

from typing import Any

from playground.errors import KnownError

ANY = object()


class ImportRejected(KnownError):
    """The file is not a session export this version can read safely; nothing was imported."""


TOKEN = {"text": str, "id": int, "logprob": (float, None),
         "top": [{"text": str, "id": int, "logprob": float}]}
TIMINGS = {"load_s": (float, None), "ttft_s": (float, None), "tokens_per_s": (float, None)}
COMPLETION = {"text": str, "finish_reason": str, "timings": TIMINGS, "tokens": [TOKEN]}
SAMPLING = {"max_new_tokens": int, "temperature": float, "top_p": float, "top_k": int, "repetition_penalty": float,
            "presence_penalty": float, "frequency_penalty": float, "stop": [str], "seed": (int, None), "n": int,
            "no_repeat_ngram": int, "model": str, "constraint": (None, {"kind": str, "spec": str})}
IMAGE_REF = {"path": str, "sha256": str}  # the exact shape is checked by transfer._check_image_ref
IMAGE_SETTINGS = {"prompt": str, "negative_prompt": str, "steps": (int, None), "guidance": (float, None),
                  "width": (int, None), "height": (int, None), "batch": int, "scheduler": str, "seed": (int, None),
                  "model": str}
COLUMN_RESULT = (None, {"model": str, "text": str, "finish_reason": str, "tokens": [TOKEN], "timings": TIMINGS,
                        "error": str})
SHEET_TABLE = {"header": [str], "rows": [[ANY]], "instructions": {}}
# a Sheet evaluation's or few-shot vs LoRA run's point on the chart (EvalPoint.as_dict + TransferPoint.as_dict)
CHART_POINT = {"model": str, "k": int, "n": int, "exact": float, "normalised": float, "numeric": (float, None),
               "method": str, "accuracy": float, "train_s": float}
BRANCH = {"root": str, "parent": str, "at": int, "alternative": str, "prefix": str}
LENS = [{"layer": int, "top": [{"text": str, "prob": float}]}]

# mode -> field -> spec: what each mode's record builder writes (tasks/*_run*.py, store/records.py) and its tab reads.
RUN_FIELDS: dict[str, dict[str, Any]] = {
    "prompt": {"params": SAMPLING, "inputs": {"source": str, "prompt": str, "branch": BRANCH},
               "outputs": {"completions": [COMPLETION], "prompt_tokens": int, "device": str, "node": str}},
    "layout": {"params": SAMPLING,
               "inputs": {"description": str, "instruction": str, "base_html": str, "examples": int},
               "outputs": {"html": str, "valid": bool, "problems": [str], "raw": str}},
    "sheet": {"params": {"shots": [int], "threshold": float, "tolerance": float, "batch": int},
              "inputs": {"kind": str, "sheet": SHEET_TABLE, "description": str},
              "outputs": {"cells": [{}], "column": str, "points": [CHART_POINT], "adapter": (str, None)}},
    "image": {"params": IMAGE_SETTINGS, "inputs": {"prompt": str, "negative_prompt": str, "image_prompt": str},
              "outputs": {"images": [IMAGE_REF], "seeds": [int], "device": str}},
    "compare": {"params": SAMPLING,
                "inputs": {"kind": str, "source": str, "prompt": str, "description": str, "reference": int,
                           "columns": [({}, str)],  # text columns' settings; layout variants' "k=v" strings
                           "grid": {"model": str, "x_axis": str, "y_axis": str, "x_values": [ANY],
                                    "y_values": [ANY], "base": IMAGE_SETTINGS}},
                "outputs": {"columns": [COLUMN_RESULT], "html": [str],
                            "cells": ([[int]], [{"row": int, "col": int, "path": str}])}},
    "inspect": {"params": {"new_tokens": int},
                "inputs": {"kind": str, "source": str, "prompt": str, "completion": str, "new_tokens": int,
                           "template": str, "values": [str], "continuations": [str], "description": str},
                "outputs": {"tokens": [str], "source_tokens": int, "prompt_tokens": int, "generated": int,
                            "layers": int, "heads": int, "last_lens": LENS,
                            "rows": [{"value": str, "continuation": str, "logprob": float}]}},
}
DRAFT = {"prompt": {"source": str, "prompt": str, "params": SAMPLING},
         "layout": {"description": str, "instruction": str, "examples": [{"description": str, "html": str}],
                    "versions": {}, "javascript": bool, "max_tokens": int},
         "sheet": {}, "image": {**IMAGE_SETTINGS, "gallery": [{**IMAGE_REF, "settings": IMAGE_SETTINGS}]},
         "compare": {"source": str, "prompt": str, "columns": [{}], "reference": int, "probabilities": bool,
                     "sweep_key": str, "sweep_values": str, "budget_mb": int, "view": int, "image_grid": {},
                     "layouts": {}},
         "inspect": {"source": str, "prompt": str, "completion": str, "new_tokens": int, "view": int, "layer": int,
                     "head": (int, None), "probe": {"template": str, "values": [str], "continuations": [str]}}}


def check(value: Any, spec: Any, where: str) -> None:
    """Raise ImportRejected unless ``value`` fits ``spec``."""
    if spec is ANY:
        return
    if isinstance(spec, tuple):
        if not any(_fits(value, option) for option in spec):
            _reject(where, " or ".join(_name(option) for option in spec))
        return
    if isinstance(spec, list):
        if not isinstance(value, list):
            _reject(where, "a list")
        for i, item in enumerate(value):
            check(item, spec[0], f"{where}[{i}]")
        return
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            _reject(where, "an object")
        for key, sub in spec.items():
            if key in value:
                check(value[key], sub, f"{where}.{key}")
        return
    if not _scalar_fits(value, spec):
        _reject(where, _name(spec))


def _fits(value: Any, spec: Any) -> bool:
    try:
        check(value, spec, "")
    except ImportRejected:
        return False
    return True


def _scalar_fits(value: Any, spec: Any) -> bool:
    if spec is None:
        return value is None
    if spec is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if spec is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, spec)


def _name(spec: Any) -> str:
    if spec is None:
        return "null"
    if isinstance(spec, list):
        return "a list"
    if isinstance(spec, dict):
        return "an object"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(spec, str(spec))


def _reject(where: str, what: str) -> None:
    raise ImportRejected(f"{where}: expected {what}; nothing was imported")
