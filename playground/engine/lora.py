"""LoRA fine-tuning (peft) of a loaded text model on (prompt, answer) pairs, and adapters on disk.

``LoraTrainer`` attaches LoRA layers to the loaded transformers model in place (the fast decode path is
inference-only and never sees them), trains only those layers with AdamW, the loss on the answer tokens alone, and
detaches them again on exit, leaving the model as it was. While attached, ``answering_model()`` is the same model
without its fast path, so the sheet filler's transformers forward answers through the LoRA layers.

A saved adapter is applied by ``merge_adapter`` when its ``BASE+name`` id loads: peft adds the low-rank update to
the base weights (``merge_and_unload``) before the fast path is built, so every mode runs the fine-tuned model.

Training is seeded (LoRA init and example order) and cooperative: ``cancel`` is checked before every step, and a
cancelled training saves nothing (``save`` writes to a temp folder that is renamed only when complete).
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground.domain.jobs import Cancel
from playground.domain.sheet import CellPrompt
from playground.errors import KnownError, ParameterError, UnsupportedModel
from playground.models import adapters

if TYPE_CHECKING:
    from playground.engine.text import TextModel

# Measured on SmolLM2-135M, 2 CPU cores (see the transfer tests and bench notes): 16 rows train in under a minute.
DEFAULT_EPOCHS = 6
DEFAULT_RANK = 8
DEFAULT_LEARNING_RATE = 2e-3
DEFAULT_BATCH = 8


@dataclass(frozen=True)
class LoraSettings:
    """How an adapter is trained; saved with it."""

    epochs: int = DEFAULT_EPOCHS
    rank: int = DEFAULT_RANK
    alpha: float = 2.0 * DEFAULT_RANK
    learning_rate: float = DEFAULT_LEARNING_RATE
    batch_size: int = DEFAULT_BATCH
    seed: int = 0
    targets: str = "all-linear"  # peft's shorthand: every linear layer but the output head

    def check(self) -> LoraSettings:
        """Self, or a ParameterError naming the setting out of range."""
        if not 1 <= self.epochs <= 1000:
            raise ParameterError(f"epochs must be 1-1000 (got {self.epochs})")
        if not 1 <= self.rank <= 256:
            raise ParameterError(f"LoRA rank must be 1-256 (got {self.rank})")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)) or self.learning_rate > 1:
            raise ParameterError(f"learning rate must be in (0, 1] (got {self.learning_rate})")
        if not 1 <= self.batch_size <= 512:
            raise ParameterError(f"batch size must be 1-512 (got {self.batch_size})")
        if not (self.alpha > 0 and math.isfinite(self.alpha)):
            raise ParameterError(f"LoRA alpha must be positive (got {self.alpha})")
        return self

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrainExample:
    """A value to learn and the prompts (as the sheet filler builds them) that ask for it, used in turn.

    Epoch e asks example i with ``prompts[(e + i) % len(prompts)]``: a row given with and without example rows is
    learnt for both kinds of prompt at the cost of one. The target is the rest of an example block after the
    column's label, ``" value\\n\\n"``, so the model also learns where the line ends (the filler stops there)."""

    prompts: tuple[CellPrompt, ...]
    answer: str


@dataclass(frozen=True)
class TrainProgress:
    """After each optimizer step: where training is, the batch's loss and the time left at this pace."""

    step: int
    steps: int
    epoch: int
    loss: float
    elapsed_s: float

    @property
    def eta_s(self) -> float:
        return self.elapsed_s / self.step * (self.steps - self.step) if self.step else 0.0


@dataclass(frozen=True)
class TrainResult:
    steps_done: int
    steps: int
    losses: tuple[float, ...]  # one per step, in order
    seconds: float
    cancelled: bool
    device: str


ProgressFn = Callable[[TrainProgress], None]


class LoraTrainer:
    """LoRA layers on a loaded TextModel, in place until ``detach`` (or the end of a ``with`` block)."""

    def __init__(self, tm: TextModel, settings: LoraSettings | None = None) -> None:
        import torch
        from peft import LoraConfig, get_peft_model

        if getattr(tm, "remote", False) or getattr(tm, "model", None) is None:
            raise KnownError(f"Fine-tuning needs a local model; {tm.id} is not loaded here")
        self.tm = tm
        self.settings = (settings or LoraSettings()).check()
        self._grad_flags = [(p, p.requires_grad) for p in tm.model.parameters()]
        torch.manual_seed(self.settings.seed)  # LoRA's A matrices start random (B at zero): seeded, reproducible
        config = LoraConfig(r=self.settings.rank, lora_alpha=self.settings.alpha, lora_dropout=0.0,
                            target_modules=self.settings.targets, bias="none")
        try:
            with warnings.catch_warnings():  # transformers 5 deprecation notices peft triggers, not ours to fix
                warnings.simplefilter("ignore", FutureWarning)
                self._peft = get_peft_model(tm.model, config)
        except (ValueError, TypeError) as exc:
            raise UnsupportedModel(f"LoRA cannot attach to {tm.id}: {exc}") from exc
        # peft keeps trainable weights in fp32 even on a bf16/fp16 model (its autocast_adapter_dtype default).
        self._params = [p for p in self._peft.parameters() if p.requires_grad]

    # -- the model while attached ------------------------------------------------------------------------------
    def answering_model(self) -> TextModel:
        """The loaded model with its LoRA layers and without the fast path (which does not know them)."""
        return dataclasses.replace(self.tm, fast=None)

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self._params)

    def detach(self) -> None:
        """Remove the LoRA layers: the model is again exactly what was loaded. Safe to call twice."""
        if self._peft is None:
            return
        self._peft.unload()
        for p, flag in self._grad_flags:
            p.requires_grad_(flag)
        self._peft = None

    def __enter__(self) -> LoraTrainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    # -- training ----------------------------------------------------------------------------------------------
    def train(self, examples: Sequence[TrainExample], on_progress: ProgressFn = lambda p: None,
              cancel: Cancel | None = None) -> TrainResult:
        """Train on ``examples`` for the settings' epochs (shuffled each epoch, seeded); return the losses."""
        import torch

        if self._peft is None:
            raise RuntimeError("the trainer was detached")
        if not examples or not all(e.prompts for e in examples):
            raise KnownError("Nothing to train on: no complete row with a value in the column")
        cancel = cancel or Cancel()
        s = self.settings
        encoded = [[self._encode(p, e.answer) for p in e.prompts] for e in examples]  # [example][prompt]
        longest = max(len(p) + len(a) for forms in encoded for p, a in forms)
        if longest > self.tm.context_length:
            raise KnownError(f"A training row is {longest} tokens; {self.tm.id} reads at most "
                             f"{self.tm.context_length}: use fewer example rows or shorter cells")
        order_rng = random.Random(s.seed)
        per_epoch = math.ceil(len(encoded) / s.batch_size)
        steps = per_epoch * s.epochs
        optimizer = torch.optim.AdamW(self._params, lr=s.learning_rate, weight_decay=0.0)
        # Linear warm-up over the first 10% of steps, then linear decay to 10%: steady on a few dozen steps.
        warm = max(1, steps // 10)

        def lr_at(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return max(0.1, 1.0 - 0.9 * (step - warm) / max(1, steps - warm))

        model = self.tm.model
        was_training = model.training
        model.eval()  # no dropout anywhere (LoRA's is 0): a step is a deterministic function of the weights
        losses: list[float] = []
        started = time.perf_counter()
        step = 0
        try:
            for epoch in range(s.epochs):
                order = list(range(len(encoded)))
                order_rng.shuffle(order)
                for start in range(0, len(order), s.batch_size):
                    if cancel.is_set():
                        return self._result(step, steps, losses, started, True)
                    for group in optimizer.param_groups:
                        group["lr"] = s.learning_rate * lr_at(step)
                    batch = [encoded[i][(epoch + i) % len(encoded[i])] for i in order[start:start + s.batch_size]]
                    loss = self._loss(batch)
                    loss.backward()
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    step += 1
                    losses.append(float(loss.detach()))
                    on_progress(TrainProgress(step, steps, epoch + 1, losses[-1], time.perf_counter() - started))
        except torch.OutOfMemoryError as exc:
            from playground.engine.device import free_memory
            from playground.errors import OutOfMemory

            optimizer.zero_grad(set_to_none=True)
            free_memory(self.tm.device)
            raise OutOfMemory(f"Out of memory on {self.tm.device} while fine-tuning; use a smaller batch or "
                              "fewer example rows") from exc
        finally:
            model.train(was_training)
        return self._result(step, steps, losses, started, False)

    def _result(self, step: int, steps: int, losses: list[float], started: float, cancelled: bool) -> TrainResult:
        return TrainResult(step, steps, tuple(losses), time.perf_counter() - started, cancelled, str(self.tm.device))

    def _encode(self, p: CellPrompt, answer_text: str) -> tuple[list[int], list[int]]:
        """(prompt ids, answer ids), the prompt tokenized as the filler does it (prefix with special tokens)."""
        tok = self.tm.tokenizer
        if p.prefix:
            prompt = tok(p.prefix, add_special_tokens=True)["input_ids"] + tok(p.query, add_special_tokens=False)[
                "input_ids"]
        else:
            prompt = tok(p.query, add_special_tokens=True)["input_ids"]
        answer = tok(f" {answer_text.strip()}\n\n", add_special_tokens=False)["input_ids"]
        return list(prompt), list(answer)

    def _loss(self, batch: list[tuple[list[int], list[int]]]) -> Any:
        """Mean cross-entropy over the answer tokens of a left-padded batch (logits only where answers are)."""
        import torch

        dev = self.tm.device
        width = max(len(p) + len(a) for p, a in batch)
        span = max(len(a) for _, a in batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        scored = torch.zeros((len(batch), span), dtype=torch.bool)  # (B, A): which of the last A are answer tokens
        for i, (p, a) in enumerate(batch):
            seq = p + a
            ids[i, width - len(seq):] = torch.tensor(seq)
            mask[i, width - len(seq):] = 1
            scored[i, span - len(a):] = True
        positions = (mask.cumsum(1) - 1).clamp(min=0)  # pads are masked; real tokens count from 0
        out = self.tm.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=positions.to(dev),
                            use_cache=False, logits_to_keep=span + 1)
        logits = out.logits[:, :-1].float()  # (B, A, vocab): the position before each of the last A tokens
        targets = ids[:, width - span:].to(dev)  # (B, A)
        losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                   reduction="none").view(len(batch), span)
        weight = scored.to(dev).float()
        return (losses * weight).sum() / weight.sum()

    # -- saving ------------------------------------------------------------------------------------------------
    def save(self, base: str, name: str, meta: dict[str, Any]) -> adapters.AdapterInfo:
        """Write the adapter as ``base+name`` (peft format, safetensors) with ``meta`` and the settings; atomic."""
        if self._peft is None:
            raise RuntimeError("the trainer was detached")
        adapters.check_name(name)
        temp = adapters.temp_folder()
        try:
            self._peft.save_pretrained(str(temp), safe_serialization=True)
            (temp / "README.md").unlink(missing_ok=True)  # peft's model-card stub says nothing about this adapter
            return adapters.publish(temp, base, name, {**meta, "settings": self.settings.as_dict()})
        finally:
            adapters.discard(temp)  # gone already when published


def merge_adapter(model: Any, folder: Path, model_id: str = "") -> Any:
    """The loaded transformers ``model`` with the adapter in ``folder`` merged into its weights.

    Only safetensors adapters load (never pickle). The merged model's ``name_or_path`` becomes the adapter folder,
    so the fast path's quantized-weights cache (keyed by folder and weight files) is the adapter's own.
    """
    from peft import PeftModel

    if not (folder / adapters.WEIGHTS_FILE).is_file():
        raise UnsupportedModel(f"{model_id or folder.name}: the adapter has no {adapters.WEIGHTS_FILE} "
                               "(pickle adapters are not loaded)")
    try:
        merged = PeftModel.from_pretrained(model, str(folder), is_trainable=False).merge_and_unload()
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UnsupportedModel(f"Could not apply the adapter {model_id or folder.name}: {first}") from exc
    merged.eval()
    merged.name_or_path = str(folder)
    return merged
