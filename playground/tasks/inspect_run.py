"""An Inspect run, built once for the tab and the CLI: the ``inspect --json`` shape and the session record.

The record keeps what a user reads back later (the tokens, and each layer's top predictions at the last
position), not the attention weights: those are L × H × T² numbers, recomputed in about a second on re-opening.
"""

from __future__ import annotations

from typing import Any

from playground.domain.inspect import Inspection, InspectRequest, Lens, LensLayer, Prediction
from playground.store.records import Run

JSON_DECIMALS = 6  # attention weights in --json: plenty for a plot, a third of the text of full floats


def lens_json(layers: tuple[LensLayer, ...]) -> list[dict[str, Any]]:
    """One position's lens: ``[{"layer", "top": [{"text", "prob"}]}]``."""
    return [{"layer": entry.layer, "top": [{"text": p.text, "prob": p.prob} for p in entry.top]}
            for entry in layers]


def lens_from_json(data: list[Any]) -> tuple[LensLayer, ...]:
    """A position's lens as ``lens_json`` wrote it (token ids are not kept: -1)."""
    return tuple(LensLayer(int(e["layer"]), tuple(Prediction(str(p["text"]), -1, float(p["prob"])) for p in e["top"]))
                 for e in data if isinstance(e, dict) and e.get("top"))


def inspect_json(insp: Inspection, lens: Lens) -> dict[str, Any]:
    """The CLI's ``inspect --json`` object: tokens, attention [L][H][T][T] and the lens at every position."""
    weights = insp.attention.astype("float64").round(JSON_DECIMALS).tolist()  # float32 would print 0.68949598…
    return {"model": insp.model, "tokens": list(insp.tokens),
            "attention": {"layers": insp.layers, "heads": insp.heads, "weights": weights},
            "lens": [lens_json(lens[pos]) for pos in range(len(insp))]}


def request_of(inputs: dict[str, Any]) -> InspectRequest:
    """The request a saved run (or draft) holds."""
    return InspectRequest(prompt=str(inputs.get("prompt", "")), source=str(inputs.get("source", "")),
                          completion=str(inputs.get("completion", "")),
                          new_tokens=int(inputs.get("new_tokens", 0) or 0))


def inspect_run(request: InspectRequest, insp: Inspection | None, model_id: str, status: str = "done",
                error: str | None = None) -> Run:
    """The session record of an inspection: its inputs, tokens and the last position's layer-by-layer top."""
    inputs = {"kind": "inspect", "source": request.source, "prompt": request.prompt,
              "completion": request.completion, "new_tokens": request.new_tokens}
    params = {"new_tokens": request.new_tokens, "attention": "eager"}
    if insp is None:
        return Run(mode="inspect", model_id=model_id, params=params, inputs=inputs, status=status, error=error)
    last = len(insp) - 1
    outputs = {"tokens": list(insp.tokens), "source_tokens": insp.source_tokens,
               "prompt_tokens": insp.prompt_tokens, "generated": insp.generated,
               "layers": insp.layers, "heads": insp.heads,
               "last_lens": lens_json(insp.lens[last]) if last in insp.lens else []}
    return Run(mode="inspect", model_id=insp.model, params=params, inputs=inputs, outputs=outputs,
               timings={"seconds": round(insp.seconds, 3)}, status=status, error=error)


def same_token(p: Prediction) -> tuple[int, str]:
    """What identifies a predicted token, also in a saved run (whose ids are -1)."""
    return p.token_id, p.text


def settles_at(layers: tuple[LensLayer, ...]) -> int:
    """The first layer from which every later layer's top guess is the final answer: where it "becomes" the
    answer."""
    final = same_token(layers[-1].top[0])
    layer = layers[-1].layer
    for entry in reversed(layers):
        if same_token(entry.top[0]) != final:
            break
        layer = entry.layer
    return layer
