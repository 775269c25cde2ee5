"""Remote text-to-image: ``/v1/images/generations`` (``response_format: b64_json``) on an endpoint that offers it.

Only the standard parameters are sent (model, prompt, n, size): steps, guidance, negative prompt and seed are the
server's own, and the saved settings say so. A server without the endpoint gets a clear "does not offer image
generation" instead of a bare 404. Cancel closes the connection; the run returns no images, as locally.
"""

from __future__ import annotations

import base64
import binascii
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from playground.domain.image import ImageRequest, ImageResult, StepEvent
from playground.domain.jobs import Cancel
from playground.domain.models import looks_like_image_model, split_remote_id  # noqa: F401 - re-exported
from playground.errors import KnownError, RemoteNotFound, RemoteProtocolError
from playground.models.endpoints import Endpoint, EndpointStore
from playground.remote.backend import client_for
from playground.remote.client import RemoteClient


@dataclass
class RemoteImageModel:
    """What the Image tab and the image runner hold for a remote image model."""

    id: str
    endpoint: Endpoint
    model_name: str
    client: RemoteClient
    load_s: float = 0.0
    defaults: dict[str, Any] = field(default_factory=lambda: {"steps": "server", "guidance": "server",
                                                              "width": "server", "height": "server"})
    schedulers: list[str] = field(default_factory=list)
    demo: bool = False
    description: str = ""
    remote = True

    @property
    def device(self) -> str:
        return f"remote ({self.endpoint.name})"

    def unload(self) -> None:
        """Nothing is held."""


def load_remote_image_model(model_id: str, store: EndpointStore | None = None) -> RemoteImageModel:
    """A RemoteImageModel for ``remote:<endpoint>/<model>`` (no request yet: the first generation checks)."""
    store = store or EndpointStore()
    name, model = split_remote_id(model_id)
    endpoint = store.get(name)
    model = model or endpoint.model
    if not model:
        raise KnownError(f"Name the image model: remote:{name}/MODEL")
    return RemoteImageModel(model_id, endpoint, model, client_for(endpoint, store))


def generate_remote_image(model: RemoteImageModel, req: ImageRequest,
                          on_event: Callable[[StepEvent], None] = lambda e: None,
                          cancel: Cancel | None = None) -> ImageResult:
    """Ask the server for ``req.batch`` images; returns them as PIL images with the settings sent."""
    from PIL import Image

    req.validate()
    cancel = cancel or Cancel()
    body: dict[str, Any] = {"model": model.model_name, "prompt": req.prompt, "n": req.batch,
                            "response_format": "b64_json"}
    if req.width and req.height:
        body["size"] = f"{req.width}x{req.height}"
    seed = req.seed if req.seed is not None else 0
    settings = {"prompt": req.prompt, "negative_prompt": "", "steps": None, "guidance": None, "width": req.width,
                "height": req.height, "scheduler": "server", "batch": req.batch, "model": model.id, "seed": seed,
                "note": "remote: steps, guidance and seed are the server's"}
    common = {"model": model.id, "seeds": tuple(seed for _ in range(req.batch)), "settings": settings,
              "device": model.device}
    started = time.perf_counter()
    try:
        answer = model.client.post_json("/images/generations", body, cancel)
    except RemoteNotFound as exc:
        raise RemoteNotFound(f"{model.endpoint.name} does not offer image generation (/v1/images/generations) "
                             f"or has no image model {model.model_name!r}") from exc
    total = time.perf_counter() - started
    if answer is None or cancel.is_set():
        return ImageResult(images=(), cancelled=True, **common)
    items = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(items, list) or not items:
        raise RemoteProtocolError(f"{model.endpoint.name}: the image answer holds no images")
    images = []
    for item in items:
        data = item.get("b64_json") if isinstance(item, dict) else None
        if not isinstance(data, str):
            raise RemoteProtocolError(f"{model.endpoint.name} sent image URLs, not the images (b64_json)")
        try:
            image = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
            image.load()
        except (binascii.Error, ValueError, OSError) as exc:
            raise RemoteProtocolError(f"{model.endpoint.name}: an image in the answer is not a readable "
                                      "picture") from exc
        images.append(image.convert("RGB"))
    if images and not (req.width and req.height):
        settings["width"], settings["height"] = images[0].size
    common["seeds"] = tuple(seed for _ in images)
    on_event(StepEvent(1, 1, None, total))
    return ImageResult(images=tuple(images), timings={"load_s": 0.0, "total_s": round(total, 4),
                                                      "s_per_step": round(total, 5), "steps": 1}, **common)
