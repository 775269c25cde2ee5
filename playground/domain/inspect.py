"""What the Inspect mode computes and hands across threads: a text's tokens, every layer's and head's attention
weights, each layer's hidden state (for the layer-by-layer "logit lens"), and probe scores.

Arrays are numpy (float32): the UI draws them without importing torch, and they cross threads without copying.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playground.errors import ParameterError

MAX_NEW_TOKENS = 64  # a greedy continuation before inspecting: enough to see generated tokens attend


@dataclass(frozen=True)
class InspectRequest:
    """Inspect ``source + prompt + completion`` (the model sees them joined, as the Prompt tab sends them), after
    first continuing it greedily by ``new_tokens`` tokens."""

    prompt: str
    source: str = ""
    completion: str = ""  # a completion to inspect as well (e.g. the Prompt tab's output)
    new_tokens: int = 0

    @property
    def text(self) -> str:
        return self.source + self.prompt + self.completion

    def validate(self) -> None:
        if not self.text:
            raise ParameterError("Type a source text or a prompt to inspect")
        if not 0 <= self.new_tokens <= MAX_NEW_TOKENS:
            raise ParameterError(f"new tokens must be between 0 and {MAX_NEW_TOKENS}")


@dataclass(frozen=True)
class Prediction:
    """One candidate next token and its probability."""

    text: str
    token_id: int
    prob: float


@dataclass(frozen=True)
class LensLayer:
    """What one layer's hidden state at one position predicts, through the final norm and the output head.
    Layer 0 is the embeddings (the input to the first block); layer L is the model's own prediction."""

    layer: int
    top: tuple[Prediction, ...]


Lens = dict[int, tuple[LensLayer, ...]]  # position -> one entry per layer, 0..L


@dataclass(frozen=True)
class Inspection:
    """One inspected text."""

    model: str
    tokens: tuple[str, ...]  # each token's text; they concatenate to the text (special tokens as their names)
    token_ids: tuple[int, ...]
    source_tokens: int  # tokens [0, source_tokens) hold the source text
    prompt_tokens: int  # tokens [prompt_tokens, T) are the completion: given, or generated here
    generated: int  # the last ``generated`` tokens were generated greedily by this inspection
    attention: Any  # numpy float32 [layers, heads, T, T]: row q holds what token q attends to (causal: 0 above)
    hidden: Any  # numpy float32 [layers + 1, T, hidden]: the embeddings, then each block's output (before the
    # final norm): what the logit lens reads
    lens: Lens  # the positions computed with the first view (more are computed on demand)
    seconds: float  # forward pass (+ generation) and the first lens

    @property
    def layers(self) -> int:
        return int(self.attention.shape[0])

    @property
    def heads(self) -> int:
        return int(self.attention.shape[1])

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass(frozen=True)
class ProbeRow:
    """One slot value × continuation: log P(continuation | template with the value)."""

    value: str
    continuation: str
    logprob: float
