"""Domain records the store returns (never ORM rows), and conversions from generation results."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from playground.domain.text import Alternative, Completion, GenerationRequest, GenerationResult, TokenEvent

RUN_STATUSES = ("done", "cancelled", "failed")


@dataclass(frozen=True)
class SessionInfo:
    id: int
    name: str
    mode: str
    created_at: datetime
    updated_at: datetime
    run_count: int = 0


@dataclass(frozen=True)
class Run:
    """One run in any mode: what went in, what came out, how long it took, how it ended."""

    mode: str
    model_id: str
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    status: str = "done"
    error: str | None = None
    id: int | None = None
    session_id: int | None = None
    created_at: datetime | None = None

    def title(self, width: int = 60) -> str:
        """A one-line label for history lists: the prompt (or description) start; a Layout iteration's change."""
        for key in ("instruction", "prompt", "description", "image_prompt"):
            value = self.inputs.get(key)
            if isinstance(value, str) and value.strip():
                line = ("change: " if key == "instruction" else "") + " ".join(value.split())
                return line if len(line) <= width else line[: width - 1] + "…"
        return f"{self.mode} run"


def search_text_of(inputs: dict[str, Any], outputs: dict[str, Any]) -> str:
    """All the strings a user might search for, from inputs and outputs (token lists left out)."""
    parts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key not in {"tokens", "top"}:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(inputs)
    walk(outputs)
    return "\n".join(parts)[:200_000]


def run_from_result(request: GenerationRequest, result: GenerationResult | None, status: str,
                    error: str | None = None, model_id: str = "") -> Run:
    """A Prompt-mode run record: parameters, source + prompt, every completion with its tokens."""
    params = {"max_new_tokens": request.max_new_tokens, "temperature": request.temperature,
              "top_p": request.top_p, "top_k": request.top_k, "repetition_penalty": request.repetition_penalty,
              "stop": list(request.stop), "seed": request.seed, "n": request.n}
    if request.presence_penalty or request.frequency_penalty:
        params.update(presence_penalty=request.presence_penalty, frequency_penalty=request.frequency_penalty)
    if request.constraint is not None:
        params["constraint"] = {"kind": request.constraint.kind, "spec": request.constraint.spec}
    outputs: dict[str, Any] = {}
    timings: dict[str, Any] = {}
    if result is not None:
        params["seed"] = result.seed  # the seed actually used, so the run can be reproduced
        outputs = {"completions": [completion_to_dict(c) for c in result.completions],
                   "prompt_tokens": result.prompt_tokens, "device": result.device}
        timings = result.first.timings.as_dict()
        model_id = result.model
    return Run(mode="prompt", model_id=model_id, params=params,
               inputs={"source": request.source, "prompt": request.prompt}, outputs=outputs, timings=timings,
               status=status, error=error)


def completion_to_dict(c: Completion) -> dict[str, Any]:
    return {"text": c.text, "finish_reason": str(c.finish_reason), "timings": c.timings.as_dict(),
            "tokens": [{"text": t.text, "id": t.token_id, "logprob": t.logprob,
                        "top": [{"text": a.text, "id": a.token_id, "logprob": a.logprob} for a in t.top]}
                       for t in c.tokens]}


def token_events(run: Run) -> list[TokenEvent]:
    """The streamed tokens of a saved Prompt run, to show it again with its probabilities."""
    events = []
    for ci, comp in enumerate(run.outputs.get("completions", [])):
        for ti, tok in enumerate(comp.get("tokens", [])):
            top = tuple(Alternative(a["text"], int(a["id"]), float(a["logprob"])) for a in tok.get("top", []))
            events.append(TokenEvent(ci, ti, tok["text"], int(tok["id"]), optional_float(tok.get("logprob")), top))
    return events


def optional_float(value: Any) -> float | None:
    """A saved logprob: a number, or None where a remote server provided none."""
    return None if value is None else float(value)
