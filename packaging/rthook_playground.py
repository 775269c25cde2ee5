# PyInstaller runtime hook: runs before the app's code in the frozen bundle.
# The embedded model's GGUF rides in the bundle, so the first launch converts it instead of calling pip (offline).
import os

from playground.bundle import bundled_gguf

_gguf = bundled_gguf()
if _gguf is not None:
    os.environ.setdefault("PLAYGROUND_EMBEDDED_GGUF", str(_gguf))
# A frozen app has no pip and should not phone the Hub for models it carries.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
