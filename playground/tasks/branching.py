"""Branching a completion: keep its text up to one token, put one of that token's alternatives in its place, and
let the model continue from there. Every branch is a Prompt run of its own, linked into a tree.

    fork = Fork(root="…", parent="…", source=…, prompt=…, prefix=(tokens before it), chosen=TokenEvent, alternative)
    fork.request(params, greedy=True)  # source + prompt + prefix text + alternative, continued
    fork.record(request, result, "done")  # completion = prefix + alternative + the new tokens

How runs link (so a tree survives a restart and an export): every Prompt-tab run carries its node id in
``outputs["node"]``; a branch adds ``inputs["branch"] = {"root", "parent", "at", "alternative", "prefix"}``. A run
saved before branching existed (or by the CLI) is node ``run-<id>``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from playground.domain.text import (
    Alternative,
    Completion,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    Timings,
    TokenEvent,
)
from playground.store.records import Run, completion_to_dict, run_from_result


def new_node_id() -> str:
    return uuid.uuid4().hex[:12]


def node_of(run: Run) -> str:
    """A run's node id in the branch tree."""
    node = run.outputs.get("node")
    return str(node) if node else f"run-{run.id}"


def branch_of(run: Run) -> dict[str, Any]:
    """A branch run's link to its tree ({} for a root)."""
    branch = run.inputs.get("branch")
    return branch if isinstance(branch, dict) else {}


def root_of(run: Run) -> str:
    return str(branch_of(run).get("root") or node_of(run))


def with_node(run: Run, node: str | None = None) -> Run:
    """``run`` carrying a (new) node id, so later branches can point at it."""
    return dataclasses.replace(run, outputs={**run.outputs, "node": node or new_node_id()})


def tree_runs(runs: Iterable[Run], root: str) -> list[Run]:
    """The runs of the tree rooted at node ``root``: the root first, then its branches in order."""
    runs = list(runs)
    head = [r for r in runs if node_of(r) == root and not branch_of(r)]
    return head[:1] + [r for r in runs if branch_of(r).get("root") == root]


@dataclass(frozen=True)
class Fork:
    """Continue ``parent``'s completion from token ``len(prefix)``, with ``alternative`` in that place."""

    root: str
    parent: str
    source: str
    prompt: str  # the root's prompt; the prefix and the alternative come after it
    prefix: tuple[TokenEvent, ...]  # the parent's tokens before the replaced one
    chosen: TokenEvent  # the token being replaced (its alternatives list stays on the new one)
    alternative: Alternative

    @property
    def at(self) -> int:
        return len(self.prefix)

    @property
    def prefix_text(self) -> str:
        return "".join(t.text for t in self.prefix)

    def request(self, params: dict[str, Any], greedy: bool) -> GenerationRequest:
        """The continuation's request: one completion of source + prompt + prefix + alternative, with the given
        sampling settings (temperature 0 when ``greedy``)."""
        settings = {**params, "n": 1}
        if greedy:
            settings["temperature"] = 0.0
        settings["stop"] = tuple(settings.get("stop") or ())
        return GenerationRequest(source=self.source, prompt=self.prompt + self.prefix_text + self.alternative.text,
                                 **settings)

    def lead(self) -> list[TokenEvent]:
        """The branch's first tokens, before any new one: the prefix and the alternative in its place."""
        alt = TokenEvent(0, self.at, self.alternative.text, self.alternative.token_id, self.alternative.logprob,
                         self.chosen.top)
        return [dataclasses.replace(t, completion=0) for t in self.prefix] + [alt]

    def completion(self, result: GenerationResult | None) -> Completion:
        """The branch's whole completion: prefix + alternative + the new tokens (renumbered after them)."""
        lead = self.lead()
        new = result.first if result is not None else None
        tokens = lead + [dataclasses.replace(t, completion=0, index=len(lead) + i)
                         for i, t in enumerate(new.tokens if new else ())]
        text = "".join(t.text for t in lead) + (new.text if new else "")
        return Completion(text, new.finish_reason if new else FinishReason.CANCELLED, tuple(tokens),
                          new.timings if new else Timings())

    def record(self, request: GenerationRequest, result: GenerationResult | None, status: str,
               error: str | None = None, model_id: str = "") -> Run:
        """The branch's Prompt run: the root's source and prompt, the link to its parent, the whole completion."""
        run = run_from_result(request, result, status, error, model_id)
        outputs = dict(run.outputs)
        outputs["completions"] = [completion_to_dict(self.completion(result))]
        outputs["node"] = new_node_id()
        inputs = {"source": self.source, "prompt": self.prompt,
                  "branch": {"root": self.root, "parent": self.parent, "at": self.at,
                             "alternative": self.alternative.text, "prefix": self.prefix_text}}
        return dataclasses.replace(run, inputs=inputs, outputs=outputs)


def fork_from(run: Run, events: list[TokenEvent], clicked: TokenEvent, alternative: Alternative) -> Fork:
    """A fork of ``run`` (shown as ``events``) at ``clicked``, one of its completion's tokens."""
    prefix = tuple(e for e in events if e.completion == clicked.completion and e.index < clicked.index)
    return Fork(root=root_of(run), parent=node_of(run), source=str(run.inputs.get("source", "")),
                prompt=str(run.inputs.get("prompt", "")), prefix=prefix, chosen=clicked, alternative=alternative)


def label(run: Run, width: int = 40) -> str:
    """A tree row: the root's completion start, or where a branch forked and what it chose."""
    completions = run.outputs.get("completions") or [{}]
    branch = branch_of(run)
    text = str(completions[0].get("text", ""))
    if branch:
        at = int(branch.get("at", 0))
        tail = " ".join(text[len(str(branch.get("prefix", ""))):].split())
        head = f"@{at} {str(branch.get('alternative', ''))!r}: "
        return head + (tail if len(tail) <= width else tail[: width - 1] + "…")
    one_line = " ".join(text.split()) or "(empty)"
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"
