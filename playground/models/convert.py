"""Convert a GGUF file once into a safetensors folder that loads in seconds.

transformers reads GGUF by de-quantizing every tensor (~35 s for a 135M model); a safetensors copy of the
result reloads in ~3 s.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from playground.domain.jobs import ProgressEvent
from playground.errors import KnownError, UnsupportedModel, first_line, library_panic

ProgressFn = Callable[[ProgressEvent], None]
COMPLETE_MARKER = ".converted"


def is_converted(folder: Path) -> bool:
    """True when ``folder`` holds a finished conversion (the marker is written last)."""
    return (folder / COMPLETE_MARKER).is_file()


def convert_gguf(gguf_path: Path, out_dir: Path, on_progress: ProgressFn = lambda e: None) -> Path:
    """Write ``out_dir`` (config, safetensors weights, tokenizer, chat template) from a GGUF file; return it.

    The work happens in a sibling temp folder renamed into place at the end, so an interrupted conversion
    never leaves a half-written model behind.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not gguf_path.is_file():
        raise UnsupportedModel(f"GGUF file not found: {gguf_path}")
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    started = time.perf_counter()
    try:
        on_progress(ProgressEvent("Reading the tokenizer from the GGUF file", 0.05))
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        on_progress(ProgressEvent("De-quantizing the GGUF weights (once; about half a minute)", 0.3))
        model, info = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                           output_loading_info=True)
        # transformers initialises what the file lacks at random: a vocabulary-only or cut-down file would
        # "convert" into a model that writes noise
        missing = sorted(set(info.get("missing_keys") or ()) - set(getattr(model, "_tied_weights_keys", None) or ()))
        if missing:
            raise ValueError(f"the file holds no weights for {len(missing)} of the model's tensors (e.g. "
                             f"{', '.join(missing[:3])}): it is incomplete, or a vocabulary-only GGUF")
        on_progress(ProgressEvent("Saving as safetensors", 0.85))
        # A GGUF-loaded model refuses save_pretrained; the weights are plain fp32 by now, so drop the marker.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
    except KnownError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except BaseException as exc:  # any failure of the library on a third-party file is "cannot convert this"
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, Exception) or library_panic(exc):  # (not an interrupt: that stays one)
            raise UnsupportedModel(f"Could not convert {gguf_path.name}: {first_line(exc)}") from exc
        raise
    (tmp / COMPLETE_MARKER).write_text(f"{gguf_path.name}\n{time.perf_counter() - started:.1f} s\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    on_progress(ProgressEvent("Converted", 1.0))
    return out_dir
