"""Read a Llama-family config without transformers' model-loading stack.

``LlamaConfig``'s module imports ``transformers.utils.type_validators`` for one field validator, and that module
imports ``transformers.activations`` (only to list valid activation names), which imports hub kernels, checkpoint
conversion, ``torch.distributed.tensor``, sympy and accelerate. Measured on the embedded SmolLM2 (a Llama): the
load took 2.3-2.4 s and the process held 413 MB; without that chain 1.5-1.7 s and 361 MB. Llama-3.2-1B: 48 MB less.
The fused runner needs none of it: it reads the config's numbers. transformers' own forward (Inspect, LoRA, the
fallback path) imports the chain later through its modeling code, as before.

``prepare()`` imports ``type_validators`` once with torch reported absent while that one module runs, so it binds
an empty activation table (its validator then skips the name check, as it does on a torch-less install); everything
else it imports is imported first, normally, and the import lock keeps other threads from importing meanwhile.
Where transformers no longer has that shape, it does nothing.
"""

from __future__ import annotations

import _imp
import importlib
import sys

_MODULE = "transformers.utils.type_validators"
# what type_validators imports besides the activations: imported normally first, so none of them sees the stand-in
_DEPENDENCIES = ("transformers.utils.import_utils", "transformers.utils.generic",
                 "transformers.tokenization_utils_base", "transformers.video_utils")


def prepare() -> None:
    """Import ``type_validators`` without ``transformers.activations`` (idempotent; see the module docstring)."""
    if _MODULE in sys.modules or "transformers.activations" in sys.modules:
        return
    try:
        modules = [importlib.import_module(name) for name in _DEPENDENCIES]
    except ImportError:  # another transformers layout: import as it comes
        return
    import_utils = modules[0]
    real = getattr(import_utils, "is_torch_available", None)
    if real is None:
        return
    vision = getattr(import_utils, "is_vision_available", lambda: False)
    try:
        if vision():
            importlib.import_module("transformers.image_utils")  # type_validators' other import, with Pillow
    except ImportError:
        return
    # The stand-in is global for as long as type_validators runs: the import lock keeps other threads from starting
    # an import meanwhile (everything it imports is already loaded, so nothing here waits on another thread).
    _imp.acquire_lock()
    import_utils.is_torch_available = lambda: False
    try:
        validators = importlib.import_module(_MODULE)
    except Exception:  # noqa: BLE001 - a failed import leaves nothing behind: transformers imports it its own way later
        return
    finally:
        import_utils.is_torch_available = real
        _imp.release_lock()
    # its device validator tests is_torch_available() at call time, then isinstance(value, torch.device)
    validators.is_torch_available = real
    if real():
        import torch

        validators.torch = torch
