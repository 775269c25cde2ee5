"""The logit lens: what each layer's hidden state would predict if the network stopped there.

Each layer's output goes through the model's own final norm and output head (nostalgebraist's "logit lens"); the
last layer's is then exactly the model's next-token distribution. Computed per position on demand: a full
vocabulary for every layer and position of a long prompt would cost seconds (L × T × vocab × hidden).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from playground.domain.inspect import Lens, LensLayer, Prediction
from playground.engine.inspect.model import decoder_parts

if TYPE_CHECKING:
    import torch

    from playground.engine.text import TextModel

TOP = 5
CHUNK = 8  # positions per head projection: [layers + 1, CHUNK, vocab] float32 at a time


def layer_logits(tm: TextModel, hidden: Any, positions: Sequence[int]) -> torch.Tensor:
    """[layers + 1, len(positions), vocab] float32 logits of each layer's state at ``positions``."""
    import torch

    parts = decoder_parts(tm.model)
    h = torch.from_numpy(hidden[:, list(positions)]).to(tm.device, tm.dtype)
    with torch.inference_mode():
        logits = parts.head(parts.final_norm(h)).float()
        if parts.softcap:
            logits = torch.tanh(logits / parts.softcap) * parts.softcap
    return logits


def lens(tm: TextModel, hidden: Any, positions: Sequence[int], top: int = TOP) -> Lens:
    """For each position, each layer's top ``top`` next tokens with their probabilities."""
    import torch

    from playground.engine.generate import _piece

    out: Lens = {}
    positions = list(positions)
    for start in range(0, len(positions), CHUNK):
        chunk = positions[start:start + CHUNK]
        probs = torch.softmax(layer_logits(tm, hidden, chunk), dim=-1)
        values, ids = torch.topk(probs, top, dim=-1)  # (L + 1, P, top)
        values, ids = values.cpu().tolist(), ids.cpu().tolist()
        for j, pos in enumerate(chunk):
            out[pos] = tuple(
                LensLayer(layer, tuple(Prediction(_piece(tm.tokenizer, i), i, p)
                                       for i, p in zip(ids[layer][j], values[layer][j], strict=True)))
                for layer in range(len(values)))
    return out

