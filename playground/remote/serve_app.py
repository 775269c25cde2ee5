"""What ``serve``'s handler threads share (the ServeApp: one scheduler, the served model's name, the key, CORS)
and the names clients see."""

from __future__ import annotations

import hmac
import sys
import time
from collections.abc import Callable
from typing import Any

from playground.remote.api_error import ApiError
from playground.remote.cors import CorsPolicy
from playground.remote.scheduler import DEFAULT_MAX_QUEUE, Scheduler

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def served_name(model_id: str) -> str:
    """The name clients see: a folder or file path becomes its last part (no paths in model ids)."""
    if "/" in model_id or "\\" in model_id:
        from pathlib import Path

        path = Path(model_id).expanduser()
        if path.exists():
            return path.stem if path.is_file() else path.name
    return model_id


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


class ServeApp:
    """What the handler threads share: the scheduler (one device queue), the served model id, the key, CORS."""

    def __init__(self, runner: Any, model_id: str, api_key: str | None = None,
                 log: Callable[[str], None] | None = None, name: str | None = None,
                 cors_origins: tuple[str, ...] = (), max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        self.runner = runner
        self.model_id = model_id  # what the runner loads
        self.name = name or served_name(model_id)  # what clients see and send as "model"
        self.api_key = api_key or None
        self.created = int(time.time())
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.scheduler = Scheduler(runner, model_id, max_queue)
        self.cors = CorsPolicy(cors_origins)
        self.finished: list[Any] = []  # the last few GenerationResults (tests check a disconnect cancelled one)

    def model_object(self) -> dict[str, Any]:
        return {"id": self.name, "object": "model", "created": self.created, "owned_by": "playground"}

    def check_model(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "'model' is required", param="model")
        if model not in (self.name, self.model_id):
            raise ApiError(404, f"The model '{model}' does not exist; this server serves '{self.name}'",
                           param="model", code="model_not_found")

    def authorised(self, header: str | None) -> bool:
        if self.api_key is None:
            return True
        scheme, _, token = (header or "").partition(" ")
        try:
            return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.api_key.encode())
        except UnicodeEncodeError:
            return False
