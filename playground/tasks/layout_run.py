"""A Layout → HTML run, built once for the tab, the CLI and Compare's layout variants: its request and its record."""

from __future__ import annotations

from typing import Any

from playground.domain.text import GenerationRequest, GenerationResult
from playground.store.records import Run
from playground.tasks.layout_html import LayoutPrompt, clean

MAX_NEW_TOKENS = 400  # a small page; the tab's spin box and --max-tokens change it
TEMPERATURE = 0.0  # greedy: sampled HTML from small models breaks quickly
NO_REPEAT_NGRAM = 10  # small models loop on CSS ("border-style: solid; border-style: ...")


def layout_settings(prompt: LayoutPrompt, **overrides: Any) -> dict[str, Any]:
    """The request settings of a layout run (GenerationRequest fields), with ``overrides`` applied."""
    return {"max_new_tokens": MAX_NEW_TOKENS, "temperature": TEMPERATURE, "no_repeat_ngram": NO_REPEAT_NGRAM,
            "stop": prompt.stop, **{k: v for k, v in overrides.items() if v is not None}}


def layout_request(prompt: LayoutPrompt, **overrides: Any) -> GenerationRequest:
    """The request for ``prompt``: its chat messages for chat models, its few-shot text for base models."""
    return GenerationRequest(prompt=prompt.text, messages=prompt.messages, **layout_settings(prompt, **overrides))


def layout_run(request: GenerationRequest, inputs: dict[str, Any], result: GenerationResult | None,
               model_id: str, raw: str = "", cancelled: bool = False, error: str = "") -> Run:
    """The session record of a layout run: done / cancelled with the cleaned page, or failed with ``error``."""
    params = {"max_new_tokens": request.max_new_tokens, "temperature": request.temperature, "top_p": request.top_p,
              "top_k": request.top_k, "seed": result.seed if result is not None else request.seed,
              "no_repeat_ngram": request.no_repeat_ngram}
    if result is None:
        return Run(mode="layout", model_id=model_id, params=params, inputs=inputs, status="failed", error=error)
    page = clean(raw)
    return Run(mode="layout", model_id=result.model, params=params, inputs=inputs,
               outputs={"html": page.html, "valid": page.valid, "problems": list(page.problems), "raw": raw},
               timings=result.first.timings.as_dict(), status="cancelled" if cancelled else "done")
