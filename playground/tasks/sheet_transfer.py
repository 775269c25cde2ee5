"""Transfer vs in-context learning on the user's own table: few-shot prompting and LoRA fine-tuning against k.

For each k the same k rows are either put in the prompt (few-shot: the base model, k example blocks), trained on
(LoRA, asked with no examples), or both (LoRA + few-shot: the trained model, the same k blocks in the prompt). All
three are asked about the same held-out rows, in the same prompt format as the Sheet's fill (``cell_prompt``), and
scored like the few-shot curve (``sheet_eval.score``: exact / normalised / numeric).

Rows: the complete rows are shuffled once (seeded). The last ones (up to ``max_queries``, never fewer than
``MIN_QUERIES``) are the held-out queries; the k training / example rows are the first k of the rest, so a larger
k adds rows to a smaller k's set. A k that would leave too few rows to ask about is skipped with a note.

Also ``train_adapter``: one named adapter from a table's rows, saved for use in every mode (``BASE+name``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from playground.domain.jobs import Cancel
from playground.domain.sheet import is_numeric_column
from playground.engine.fill import DEFAULT_BATCH, DEFAULT_MAX_NEW_TOKENS, SheetFiller
from playground.engine.lora import LoraSettings, LoraTrainer, TrainExample, TrainProgress
from playground.errors import KnownError
from playground.models import adapters
from playground.store.records import Run
from playground.tasks.sheet import Sheet, cell_prompt
from playground.tasks.sheet_eval import (
    DEFAULT_QUERIES,
    DEFAULT_SHOTS,
    DEFAULT_TOLERANCE,
    EvalCase,
    EvalPlan,
    EvalPoint,
    score,
)
from playground.tasks.sheet_eval import _column_index as column_index

if TYPE_CHECKING:
    from playground.engine.text import TextModel

METHODS = ("few-shot", "lora", "lora+few-shot")
LABELS = {"few-shot": "few-shot", "lora": "LoRA 0-shot", "lora+few-shot": "LoRA + few-shot"}  # the chart's lines
MIN_QUERIES = 2
# Training prompts carry at most this many other training rows as examples: enough to learn both the 0-shot and
# the few-shot format, short enough to keep a step under a second or two on a CPU.
MAX_TRAIN_CONTEXT = 4


@dataclass(frozen=True)
class TransferPlan:
    sheet: Sheet
    column: int
    column_name: str
    known: tuple[int, ...]  # the columns every prompt shows
    shots: tuple[int, ...]  # the ks this table can run
    pool: tuple[int, ...]  # training / example rows in shuffle order: k uses the first k
    queries: tuple[int, ...]  # held-out rows, asked at every k by every method
    numeric: bool
    notes: tuple[str, ...]

    def eval_plan(self, ks: Sequence[int], with_examples: bool) -> EvalPlan:
        """The questions at each of ``ks``: with the k rows as examples, or none (a fine-tuned model's 0-shot)."""
        cases = []
        for k in ks:
            examples = list(self.pool[:k]) if with_examples else []
            for r in self.queries:
                prompt = cell_prompt(self.sheet, r, self.column, examples, self.known)
                cases.append(EvalCase(k, r, self.sheet.rows[r][self.column], prompt))
        return EvalPlan(self.column, self.column_name, tuple(ks), tuple(cases), self.numeric, self.notes)

    def train_examples(self, k: int, seed: int = 0) -> list[TrainExample]:
        """The k rows, each asked alone and after some of the others (see ``training_examples``)."""
        return training_examples(self.sheet, self.column, list(self.pool[:k]), self.known, seed)


def training_examples(sheet: Sheet, column: int, rows: list[int], known: tuple[int, ...] | None = None,
                      seed: int = 0) -> list[TrainExample]:
    """One TrainExample per row of ``rows``: asked alone (as LoRA 0-shot is) and, when there are other rows,
    after 1 to ``MAX_TRAIN_CONTEXT`` of them as examples (as LoRA + few-shot is); the value to learn is the cell's."""
    rng = random.Random(seed)
    out = []
    for r in rows:
        others = [x for x in rows if x != r]
        prompts = [cell_prompt(sheet, r, column, [], known)]
        if others:
            context = rng.sample(others, min(len(others), rng.randint(1, MAX_TRAIN_CONTEXT)))
            prompts.append(cell_prompt(sheet, r, column, context, known))
        out.append(TrainExample(tuple(prompts), sheet.rows[r][column]))
    return out


def plan_transfer(sheet: Sheet, column: str | int, shots: tuple[int, ...] = DEFAULT_SHOTS,
                  max_queries: int = DEFAULT_QUERIES, seed: int = 0) -> TransferPlan:
    """Which rows train and which are asked, for each k; raises KnownError when the table cannot run it."""
    col = column_index(sheet, column)
    if len(sheet.columns) < 2:
        raise KnownError("Fine-tuning needs at least two columns: one to ask about and one to ask from")
    complete = [r for r in range(len(sheet.rows)) if sheet.is_complete(r)]
    if len(complete) < MIN_QUERIES + 1:
        raise KnownError(f"Fine-tuning needs at least {MIN_QUERIES + 1} complete rows (every cell filled): "
                         f"{MIN_QUERIES} to ask about and 1 to learn from; the table has {len(complete)}")
    order = complete[:]
    random.Random(seed).shuffle(order)
    runnable = tuple(k for k in shots if k <= len(complete) - MIN_QUERIES)
    if not runnable:
        raise KnownError(f"No k can run: the table has {len(complete)} complete rows and keeps {MIN_QUERIES} "
                         "to ask about")
    notes = tuple(f"k = {k} skipped: the table has {len(complete)} complete rows and keeps at least "
                  f"{MIN_QUERIES} aside to ask about" for k in shots if k not in runnable)
    n_queries = max(MIN_QUERIES, min(max_queries, len(complete) - max(runnable)))
    pool, queries = order[:len(order) - n_queries], order[len(order) - n_queries:]
    known = tuple(c for c in range(len(sheet.columns)) if c != col)
    numeric = is_numeric_column([sheet.rows[r][col] for r in complete])
    return TransferPlan(sheet, col, sheet.columns[col], known, runnable, tuple(pool), tuple(queries), numeric, notes)


# -- results -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TransferPoint:
    """One method's accuracy at one k on ``n`` held-out rows; ``train_s``: training time of that k's adapter."""

    method: str  # one of METHODS
    k: int
    n: int
    exact: float
    normalised: float
    numeric: float | None
    train_s: float

    @property
    def accuracy(self) -> float:
        """The headline score: numeric within tolerance for a numeric column, else normalised match."""
        return self.numeric if self.numeric is not None else self.normalised

    def as_dict(self) -> dict[str, Any]:
        """The CLI's ``sheet transfer --json`` shape."""
        return {"k": self.k, "method": self.method, "accuracy": round(self.accuracy, 4),
                "train_s": round(self.train_s, 2)}

    def chart_point(self) -> EvalPoint:
        """The point on the chart: the method's line plays the part of a model's."""
        return EvalPoint(LABELS[self.method], self.k, self.n, self.exact, self.normalised, self.numeric)

    def record(self) -> dict[str, Any]:
        """Everything, for the run record (``EvalPoint.as_dict`` keys, so the chart reads it back, plus ours)."""
        return {**self.chart_point().as_dict(), **self.as_dict()}


def _points(method: str, evaluated: list[EvalPoint], train_s: float) -> list[TransferPoint]:
    return [TransferPoint(method, p.k, p.n, p.exact, p.normalised, p.numeric, train_s) for p in evaluated]


@dataclass(frozen=True)
class TransferProgress:
    """Where a transfer run is: the phase, which k (``index`` of ``count``), and training's step, loss and ETA."""

    phase: str  # "few-shot" | "training" | "evaluating"
    k: int
    index: int
    count: int
    train: TrainProgress | None = None

    def describe(self) -> str:
        where = f"k = {self.k} ({self.index}/{self.count})"
        if self.phase == "few-shot":
            return "few-shot: asking the base model at every k"
        if self.phase == "evaluating" or self.train is None:
            return f"{where}: asking the fine-tuned model"
        t = self.train
        return f"{where}: training step {t.step}/{t.steps} · loss {t.loss:.3f} · ETA {t.eta_s:.0f} s"


@dataclass
class TransferResult:
    points: list[TransferPoint] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0
    device: str = ""
    losses: dict[int, tuple[float, ...]] = field(default_factory=dict)  # k -> per-step training loss


def run_transfer(tm: TextModel, plan: TransferPlan, settings: LoraSettings | None = None,
                 on_progress: Callable[[TransferProgress], None] = lambda p: None,
                 on_points: Callable[[list[TransferPoint]], None] = lambda pts: None, cancel: Cancel | None = None,
                 tolerance: float = DEFAULT_TOLERANCE, batch_size: int = DEFAULT_BATCH,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> TransferResult:
    """Few-shot at every k, then per k > 0 an adapter trained on the k rows, asked without and with them.

    ``on_points`` receives the points as they are measured (all few-shot ones first). A stop keeps what was
    measured; the loaded model is left unchanged (every adapter is detached)."""
    if getattr(tm, "remote", False):
        raise KnownError(f"Fine-tuning needs a local model; {tm.id} runs on a remote server")
    cancel = cancel or Cancel()
    settings = (settings or LoraSettings()).check()
    started = time.perf_counter()
    result = TransferResult(device=str(getattr(tm, "device", "")))
    numeric_cols = [plan.column] if plan.numeric else []

    def ask(model: TextModel, eval_plan: EvalPlan) -> list[EvalPoint] | None:
        answers = SheetFiller(model, batch_size, max_new_tokens).fill(eval_plan.prompts, cancel=cancel,
                                                                      numeric_columns=numeric_cols)
        if answers.cancelled:
            return None
        return score(eval_plan, "", [None if a is None else a.value for a in answers.answers], tolerance)

    def add(points: list[TransferPoint]) -> None:
        result.points += points
        on_points(points)

    on_progress(TransferProgress("few-shot", plan.shots[0], 0, len(plan.shots)))
    few = ask(tm, plan.eval_plan(plan.shots, with_examples=True))
    if few is None:
        return _finish(result, started, cancelled=True)
    add(_points("few-shot", few, 0.0))
    for index, k in enumerate(plan.shots, start=1):
        if k == 0:  # an adapter trained on no rows is the base model: its points are the few-shot k = 0 ones
            base = [p for p in few if p.k == 0]
            add(_points("lora", base, 0.0) + _points("lora+few-shot", base, 0.0))
            continue
        if cancel.is_set():
            return _finish(result, started, cancelled=True)
        with LoraTrainer(tm, settings) as trainer:
            trained = trainer.train(plan.train_examples(k, settings.seed),
                                    lambda t, k=k, i=index: on_progress(
                                        TransferProgress("training", k, i, len(plan.shots), t)), cancel)
            result.losses[k] = trained.losses
            if trained.cancelled:
                return _finish(result, started, cancelled=True)
            on_progress(TransferProgress("evaluating", k, index, len(plan.shots)))
            model = trainer.answering_model()
            alone = ask(model, plan.eval_plan([k], with_examples=False))
            both = ask(model, plan.eval_plan([k], with_examples=True)) if alone is not None else None
        if alone is None or both is None:
            return _finish(result, started, cancelled=True)
        add(_points("lora", alone, trained.seconds) + _points("lora+few-shot", both, trained.seconds))
    return _finish(result, started, cancelled=False)


def _finish(result: TransferResult, started: float, cancelled: bool) -> TransferResult:
    result.cancelled = cancelled
    result.seconds = time.perf_counter() - started
    order = {m: i for i, m in enumerate(METHODS)}
    result.points.sort(key=lambda p: (order[p.method], p.k))
    return result


# -- a named adapter -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainedAdapter:
    info: adapters.AdapterInfo | None  # None when stopped: nothing was saved
    rows: int
    seconds: float
    losses: tuple[float, ...]


def train_adapter(tm: TextModel, sheet: Sheet, column: str | int, name: str, rows: int | None = None,
                  settings: LoraSettings | None = None, on_progress: Callable[[TrainProgress], None] = lambda p: None,
                  cancel: Cancel | None = None) -> TrainedAdapter:
    """Train ``tm.id + "+" + name`` on the first ``rows`` complete rows (default: all) and save it; a stopped
    training saves nothing. Raises KnownError when the table or the model cannot be used."""
    adapters.check_name(name)
    if adapters.find(tm.id) is not None:
        raise KnownError(f"{tm.id} is itself an adapter: fine-tune its base model {adapters.find(tm.id).base!r}")
    col = column_index(sheet, column)
    complete = [r for r in range(len(sheet.rows)) if sheet.is_complete(r)]
    if rows is not None and rows < 1:
        raise KnownError(f"--rows must be 1 or more (got {rows})")
    chosen = complete[:rows] if rows is not None else complete
    if not chosen:
        raise KnownError("No complete row to learn from: fill every cell of at least one row first")
    settings = (settings or LoraSettings()).check()
    examples = training_examples(sheet, col, chosen, seed=settings.seed)
    with LoraTrainer(tm, settings) as trainer:
        trained = trainer.train(examples, on_progress, cancel)
        if trained.cancelled:
            return TrainedAdapter(None, len(chosen), trained.seconds, trained.losses)
        meta = {"column": sheet.columns[col], "columns": list(sheet.columns), "rows": len(chosen),
                "rows_hash": adapters.rows_hash([sheet.rows[r] for r in chosen], sheet.columns),
                "instructions": dict(sheet.instructions), "train_s": round(trained.seconds, 2),
                "final_loss": round(trained.losses[-1], 4) if trained.losses else None,
                "device": trained.device, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        info = trainer.save(tm.id, name, meta)
    return TrainedAdapter(info, len(chosen), trained.seconds, trained.losses)


# -- the run record ------------------------------------------------------------------------------------------
def transfer_run(table: dict[str, Any], model_id: str, params: dict[str, Any], column: str,
                 points: Sequence[TransferPoint], seconds: float, status: str, error: str | None = None) -> Run:
    """A Sheet-mode transfer run: the table, and per method and k the accuracies and training time."""
    shots = ", ".join(str(k) for k in params.get("shots", ()))
    return Run(mode="sheet", model_id=model_id, params=dict(params),
               inputs={"kind": "transfer", "sheet": table,
                       "description": f"Few-shot vs LoRA on {column!r} at k = {shots}"},
               outputs={"column": column, "points": [p.record() for p in points]},
               timings={"seconds": round(seconds, 3),
                        "train_s": {str(p.k): round(p.train_s, 2) for p in points if p.method == "lora"}},
               status=status, error=error)


def train_run(table: dict[str, Any], model_id: str, params: dict[str, Any], column: str,
              trained: TrainedAdapter | None, seconds: float, status: str, error: str | None = None) -> Run:
    """A Sheet-mode adapter training: the table, the adapter's id (none when stopped or failed) and its losses."""
    name = params.get("name", "")
    outputs: dict[str, Any] = {"column": column, "adapter": None}
    if trained is not None:
        outputs = {"column": column, "adapter": trained.info.id if trained.info else None, "rows": trained.rows,
                   "losses": [round(x, 4) for x in trained.losses]}
    return Run(mode="sheet", model_id=model_id, params=dict(params),
               inputs={"kind": "train", "sheet": table, "description": f"Fine-tune adapter {name!r} on {column!r}"},
               outputs=outputs, timings={"seconds": round(seconds, 3)}, status=status, error=error)
