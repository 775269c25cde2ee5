"""Remote engines: OpenAI-compatible servers (vLLM, SGLang, llama.cpp, Ollama) as models, and ``playground serve``.

Remote model ids look like ``remote:<endpoint>/<model>``; ``remote:<endpoint>`` alone means the endpoint's
default model. The helpers here are import-cheap (no httpx) so the registry and the UI can use them freely.
"""

from __future__ import annotations

import re

REMOTE_PREFIX = "remote:"
_IMAGE_NAMES = re.compile(r"dall-?e|gpt-image|stable-?diffusion|sdxl|sd-?turbo|sd[-_]?[123]\b|flux|diffusion|imagen|"
                          r"kandinsky|pixart|image", re.IGNORECASE)


def is_remote(model_id: str | None) -> bool:
    """True for ``remote:...`` ids."""
    return bool(model_id) and str(model_id).startswith(REMOTE_PREFIX)


def remote_id(endpoint: str, model: str) -> str:
    """``remote:<endpoint>/<model>``."""
    return f"{REMOTE_PREFIX}{endpoint}/{model}"


def split_remote_id(model_id: str) -> tuple[str, str]:
    """(endpoint name, model name) of a remote id; the model is "" when the id names only the endpoint.

    The endpoint name ends at the first "/": model names may hold more ("meta-llama/Llama-3.1-8B").
    """
    if not is_remote(model_id):
        raise ValueError(f"{model_id!r} is not a remote model id (remote:ENDPOINT/MODEL)")
    endpoint, _, model = model_id[len(REMOTE_PREFIX):].partition("/")
    return endpoint, model


def looks_like_image_model(name: str) -> bool:
    """A guess from the name (a server's /v1/models does not say what a model does): dall-e, sdxl, flux …"""
    return bool(_IMAGE_NAMES.search(name))
