"""Quality checks for a faster precision: greedy answers on few-shot prompts and perplexity on a fixed text.

A precision is acceptable when >= 95% of the answers equal the fp32 model's (19 of 20) and perplexity stays within
1% over ``VARIED_TEXT`` (~2,300 tokens of narrative, dialogue, news, a recipe, science, a letter, code, a table, a
poem, a Q&A, a checklist). Used by the benches and the embedded-model tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from playground.domain.text import GenerationRequest

if TYPE_CHECKING:
    from playground.engine.text import TextModel

ANSWER_AGREEMENT_MIN = 0.95
PERPLEXITY_TOLERANCE = 0.01

_TASKS: tuple[tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]], ...] = (
    ("Country: {}\nCapital:", (("France", "Paris"), ("Japan", "Tokyo"), ("Kenya", "Nairobi")),
     ("Italy", "Canada", "Egypt", "Spain")),
    ("Word: {}\nOpposite:", (("hot", "cold"), ("up", "down"), ("fast", "slow")),
     ("big", "happy", "early", "light")),
    ("Singular: {}\nPlural:", (("cat", "cats"), ("box", "boxes"), ("child", "children")),
     ("mouse", "city", "dog", "foot")),
    ("English: {}\nFrench:", (("cat", "chat"), ("house", "maison"), ("water", "eau")),
     ("dog", "book", "bread", "sun")),
    ("Animal: {}\nSound:", (("dog", "bark"), ("cat", "meow"), ("cow", "moo")),
     ("duck", "lion", "sheep", "snake")),
)


def few_shot_prompts() -> list[str]:
    """Twenty few-shot prompts (five tasks × four queries); each answer is the first line of the completion."""
    prompts = []
    for template, shots, queries in _TASKS:
        examples = "".join(f"{template.format(q)} {a}\n\n" for q, a in shots)
        prompts += [examples + template.format(query) for query in queries]
    return prompts


PERPLEXITY_TEXT = (
    "Transfer learning starts from a model trained on a large amount of text and adapts it to a new task with "
    "few examples. A language model predicts the next word from the words before it; trained on enough text, "
    "it learns grammar, facts about the world and some reasoning. Prompting such a model with a handful of "
    "examples, without changing its weights, is called few-shot learning. The examples are written one after "
    "another, and the model continues the pattern for the last, unfinished one. Larger models follow the "
    "pattern more reliably, and the same model can translate, answer questions or write code depending only on "
    "the examples it is shown.")


def varied_text() -> str:
    """The perplexity text (package data, written for this purpose)."""
    from importlib import resources

    return resources.files(__package__).joinpath("data", "varied_text.txt").read_text(encoding="utf-8")


def greedy_answers(tm: TextModel, prompts: Iterable[str], max_new_tokens: int = 8) -> list[str]:
    from playground.engine.generate import generate

    answers = []
    for prompt in prompts:
        req = GenerationRequest(prompt=prompt, temperature=0, max_new_tokens=max_new_tokens, stop=("\n",),
                                top_logprobs=0)
        answers.append(generate(tm, req).first.text.strip())
    return answers


def perplexity(tm: TextModel, text: str | None = None, prefix_tokens: int = 8, max_tokens: int | None = None) -> float:
    """Perplexity of ``text`` (default ``varied_text()``) token by token through the model's decode path (the
    path a precision changes): the first ``prefix_tokens`` are prefilled, every later token is scored by a decode
    step; ``max_tokens`` cuts the text short (tests)."""
    import torch

    ids = list(tm.tokenizer(varied_text() if text is None else text)["input_ids"])[:max_tokens]
    total = 0.0
    with torch.inference_mode():
        if tm.fast is not None:
            logits = tm.fast.prefill(0, ids[:prefix_tokens])
            for token in ids[prefix_tokens:]:
                total -= float(torch.log_softmax(logits.float(), -1)[token])
                logits = tm.fast.step([token], [0])[0]
        else:
            out = tm.model(torch.tensor([ids], device=tm.device)).logits[0].float()
            logprobs = torch.log_softmax(out, -1)
            total = -sum(float(logprobs[i - 1, ids[i]]) for i in range(prefix_tokens, len(ids)))
    return math.exp(total / (len(ids) - prefix_tokens))


def prefill_perplexity(tm: TextModel, text: str | None = None, max_tokens: int | None = None) -> float:
    """Perplexity of ``text`` (default ``varied_text()``) with every position computed by one prefill (the path
    scoring and a prompt's KV cache take; ``perplexity`` measures decode's); transformers' forward where the model
    has no fast runner. ``max_tokens`` cuts the text short (tests)."""
    import torch

    ids = list(tm.tokenizer(varied_text() if text is None else text)["input_ids"])[:max_tokens]
    with torch.inference_mode():
        if tm.fast is not None:
            logits = tm.fast.logits(tm.fast.hidden_states(0, ids))
        else:
            logits = tm.model(torch.tensor([ids], device=tm.device)).logits[0]
        logprobs = torch.log_softmax(logits[:-1].float(), -1).gather(1, torch.tensor(ids[1:])[:, None])
    return math.exp(-float(logprobs.mean()))


def agreement(answers: list[str], reference: list[str]) -> float:
    return sum(a == b for a, b in zip(answers, reference, strict=True)) / len(reference)
