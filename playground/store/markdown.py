"""A session as Markdown, every kind of run: prompt completions, layout pages (their HTML in a fenced block), sheet
fills (the table), evaluations and few-shot vs LoRA charts (their points), images (the file and its settings),
comparisons (each column; the image grid's cells; the layout variants), inspections and probes.

For reading and sharing, not for import (the JSON export is the exact one). Text from the user or the model goes
into fenced blocks or escaped table cells, so it never turns into Markdown of its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from playground import paths
from playground.errors import KnownError
from playground.store.records import Run
from playground.store.repository import SessionStore

Lines = list[str]


def write_markdown(store: SessionStore, session_id: int, out: Path) -> Path:
    """Write ``export_markdown`` to ``out`` (its folder created if missing); raises KnownError when it cannot."""
    text = export_markdown(store, session_id)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise KnownError(f"Cannot write {exc.filename or out}: {exc.strerror or exc}") from exc
    return out


def export_markdown(store: SessionStore, session_id: int, image_root: Path | None = None) -> str:
    """The session and all its runs, oldest first. Images link to their files under ``image_root`` (default: the
    data dir, where the app keeps them)."""
    info = store.get(session_id)
    root = image_root or paths.data_dir()
    runs = store.runs(session_id)
    lines = [f"# {_inline(info.name)}", "", f"Exported {datetime.now():%Y-%m-%d %H:%M} · {len(runs)} runs", ""]
    for number, run in enumerate(runs, start=1):
        lines += _run_markdown(run, number, root)
    return "\n".join(lines).rstrip() + "\n"


def _run_markdown(run: Run, number: int, root: Path) -> Lines:
    when = f" · {run.created_at:%Y-%m-%d %H:%M:%S}" if run.created_at else ""
    kind = run.inputs.get("kind")
    title = run.mode + (f" ({kind})" if isinstance(kind, str) and kind else "")
    if run.mode == "inspect":
        title = "Probe" if kind == "probe" else "Inspection"
    lines = [f"## {number}. {title} · {_inline(run.model_id) or 'no model'} · {run.status}{when}", ""]
    if run.params:
        lines += ["Settings: " + " ".join(_code(f"{k}={v!r}") for k, v in run.params.items()), ""]
    writer = _WRITERS.get(run.mode, _other)
    lines += writer(run, root)
    if run.error:
        lines += [f"**Error:** {_inline(run.error)}", ""]
    return lines


# -- one writer per mode -------------------------------------------------------------------------------------------
def _prompt(run: Run, root: Path) -> Lines:
    lines = _fields(run.inputs, (("Source text", "source"), ("Prompt", "prompt")))
    for i, comp in enumerate(run.outputs.get("completions") or [], start=1):
        comp = comp if isinstance(comp, dict) else {"text": comp}  # recorded before imports checked types
        lines += [f"**Completion {i}** ({_inline(str(comp.get('finish_reason', '')))})", "",
                  *_fenced(str(comp.get("text", "")))]
    return lines


def _layout(run: Run, root: Path) -> Lines:
    lines = _fields(run.inputs, (("Description", "description"), ("Change", "instruction")))
    html = run.outputs.get("html")
    if isinstance(html, str) and html:
        valid = run.outputs.get("valid")
        problems = [str(p) for p in run.outputs.get("problems") or []]
        note = "valid HTML" if valid else "repaired: " + "; ".join(problems) if problems else ""
        lines += [f"**Page**{f' ({_inline(note)})' if note else ''}", "", *_fenced(html, "html")]
    return lines


def _sheet(run: Run, root: Path) -> Lines:
    table = run.inputs.get("sheet") or {}
    header = [str(h) for h in table.get("header") or []]
    rows = [[str(v) for v in row] for row in table.get("rows") or [] if isinstance(row, list)]
    lines = [f"*{_inline(str(run.inputs.get('description', '')))}*", ""] if run.inputs.get("description") else []
    if run.inputs.get("kind") in ("eval", "transfer"):
        return lines + _chart(run)
    filled = {(c.get("row"), c.get("column")): c for c in run.outputs.get("cells") or [] if isinstance(c, dict)}
    body = []
    for r, row in enumerate(rows):
        cells = []
        for c in range(len(header)):
            answer = filled.get((r, c))
            if answer is None:
                cells.append(_cell(row[c] if c < len(row) else ""))
            else:  # the model's value, in italics, with its confidence
                cells.append(f"*{_cell(str(answer.get('value', '')))}* ({_percent(answer.get('confidence'))})")
        body.append(cells)
    if header:
        lines += _table([_cell(h) for h in header], body, escaped=True)
        lines += [f"*Model cells in italics, with their confidence ({len(filled)} filled).*", ""]
    return lines


def _chart(run: Run) -> Lines:
    """An evaluation or a few-shot vs LoRA comparison: a table of its points (one per model or method and k)."""
    points = [p for p in run.outputs.get("points") or [] if isinstance(p, dict)]
    if not points:
        return []
    transfer = run.inputs.get("kind") == "transfer"
    head = ["method" if transfer else "model", "k", "n", "exact", "normalised", "numeric"] + (
        ["train s"] if transfer else [])
    rows = [[_cell(str(p.get("model", ""))), str(p.get("k", "")), str(p.get("n", "")),
             *(_percent(p.get(m)) for m in ("exact", "normalised", "numeric")),
             *([str(p.get("train_s", ""))] if transfer else [])] for p in points]
    column = run.outputs.get("column") or run.inputs.get("column") or ""
    return [f"Accuracy on {_inline(str(column))}:" if column else f"*{_inline(run.title(200))}*", "",
            *_table(head, rows, escaped=True)]


def _inspect(run: Run, root: Path) -> Lines:
    """An inspection: its text and each layer's top guess at the last position; a probe: its table."""
    if run.inputs.get("kind") == "probe":
        rows = []
        for row in run.outputs.get("rows") or []:
            if isinstance(row, dict):
                logprob = float(row.get("logprob", 0.0))
                rows.append([_cell(str(row.get("value", ""))), _code(repr(str(row.get("continuation", "")))),
                             f"{logprob:.3f}", f"{math.exp(logprob):.2%}"])
        return [f"Template: {_code(str(run.inputs.get('template', '')))}", "",
                *_table(["value", "continuation", "log P", "P"], rows, escaped=True)]
    text = "".join(str(run.inputs.get(k, "")) for k in ("source", "prompt", "completion"))
    lines = _fenced(text)
    tokens = run.outputs.get("tokens") or []
    if tokens:
        lines += [f"{len(tokens)} tokens, {run.outputs.get('layers')} layers × {run.outputs.get('heads')} heads. "
                  f"What each layer predicts after the last token ({_inline(repr(tokens[-1]))}):", ""]
        for entry in run.outputs.get("last_lens") or []:
            if isinstance(entry, dict):
                top = (entry.get("top") or [{}])[0]
                lines.append(f"- layer {entry.get('layer')}: {_code(repr(str(top.get('text', ''))))} "
                             f"{float(top.get('prob', 0)):.1%}")
        lines.append("")
    return lines


def _image(run: Run, root: Path) -> Lines:
    lines = _fields(run.inputs, (("Prompt", "prompt"), ("Negative prompt", "negative_prompt")))
    seeds = run.outputs.get("seeds") or []
    for i, ref in enumerate(run.outputs.get("images") or []):
        if isinstance(ref, dict) and ref.get("path"):
            seed = f" · seed {seeds[i]}" if i < len(seeds) else ""
            lines += [_image_link(str(run.inputs.get("prompt", "image")), root, str(ref["path"])),
                      f"`{ref['path']}`{seed}", ""]
    return lines


def _compare(run: Run, root: Path) -> Lines:
    kind = run.inputs.get("kind", "text")
    if kind == "image":
        return _compare_grid(run, root)
    if kind == "layout":
        lines = _fields(run.inputs, (("Description", "description"),))
        for i, (spec, html) in enumerate(zip(run.inputs.get("columns") or [], run.outputs.get("html") or [],
                                             strict=False), start=1):
            lines += [f"### Variant {i}: {_inline(str(spec))}", "", *_fenced(str(html), "html")]
        return lines
    lines = _fields(run.inputs, (("Source text", "source"), ("Prompt", "prompt")))
    specs = run.inputs.get("columns") or []
    for i, result in enumerate(run.outputs.get("columns") or [], start=1):
        if not isinstance(result, dict):
            continue
        spec = specs[i - 1] if i - 1 < len(specs) and isinstance(specs[i - 1], dict) else {}
        settings = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "model")
        model = spec.get("model") or result.get("model") or ""
        lines += [f"### Column {i}: {_inline(str(model))}" + (f" · {_inline(settings)}" if settings else ""), ""]
        if "error" in result:
            lines += [f"*failed: {_inline(str(result['error']))}*", ""]
            continue
        lines += [*_fenced(str(result.get("text", ""))), _column_stats(result), ""]
    return lines


def _compare_grid(run: Run, root: Path) -> Lines:
    grid = run.inputs.get("grid") or {}
    lines = _fields(run.inputs, (("Prompt", "prompt"),))
    x_values, y_values = list(grid.get("x_values") or [""]), list(grid.get("y_values") or [""])
    x_axis, y_axis = str(grid.get("x_axis", "")), str(grid.get("y_axis", ""))
    files = {(c.get("row"), c.get("col")): c for c in run.outputs.get("cells") or [] if isinstance(c, dict)}
    header = [_cell(f"{y_axis} ↓ {x_axis} →")] + [_cell(f"{x_axis}={v}") for v in x_values]
    body = []
    for r, y in enumerate(y_values):
        row = [_cell(f"{y_axis}={y}")]
        for c in range(len(x_values)):
            cell = files.get((r, c))
            row.append(_image_link(f"{x_axis}={x_values[c]}, {y_axis}={y}", root, str(cell["path"]))
                       if cell and cell.get("path") else "–")
        body.append(row)
    return lines + _table(header, body, escaped=True)


def _other(run: Run, root: Path) -> Lines:
    return _fields(run.inputs, tuple((k, k) for k, v in run.inputs.items() if isinstance(v, str)))


_WRITERS: dict[str, Callable[[Run, Path], Lines]] = {
    "prompt": _prompt, "layout": _layout, "sheet": _sheet, "image": _image, "compare": _compare,
    "inspect": _inspect}


# -- pieces --------------------------------------------------------------------------------------------------------
def _fields(inputs: dict[str, Any], labels: tuple[tuple[str, str], ...]) -> Lines:
    lines: Lines = []
    for label, key in labels:
        value = inputs.get(key)
        if isinstance(value, str) and value:
            lines += [f"**{label}**", "", *_fenced(value)]
    return lines


def _fenced(text: str, language: str = "text") -> Lines:
    """A code block whose fence is longer than any run of backticks inside (so the text cannot end it)."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + language, text, fence, ""]


def _table(header: list[str], rows: list[list[str]], escaped: bool = False) -> Lines:
    head = header if escaped else [_cell(h) for h in header]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = row if escaped else [_cell(v) for v in row]
        lines.append("| " + " | ".join(cells + [""] * (len(head) - len(cells))) + " |")
    return [*lines, ""]


def _cell(text: str) -> str:
    """Table-cell text: pipes escaped, line breaks as spaces, Markdown punctuation escaped."""
    return _inline(" ".join(text.split())).replace("|", "\\|")


def _inline(text: str) -> str:
    """Text inside a line of Markdown: its punctuation escaped so it shows as written."""
    return re.sub(r"([\\`*_{}\[\]<>#!~])", r"\\\1", " ".join(text.split()))


def _code(text: str) -> str:
    """An inline code span (backticks in the text would end it: they become quotes)."""
    return "`" + " ".join(text.replace("`", "'").split()) + "`"


def _image_link(alt: str, root: Path, relative: str) -> str:
    return f"![{_inline(alt)[:80]}](<{(root / relative).resolve().as_uri()}>)"


def _percent(value: Any) -> str:
    return f"{float(value):.0%}" if isinstance(value, int | float) else "—"


def _column_stats(result: dict[str, Any]) -> str:
    tokens = result.get("tokens") or []
    logprobs = [t.get("logprob") for t in tokens if isinstance(t, dict) and t.get("logprob") is not None]
    timings = result.get("timings") or {}
    parts = [f"{len(tokens)} tokens", str(result.get("finish_reason", ""))]
    if timings.get("tokens_per_s"):
        parts.append(f"{float(timings['tokens_per_s']):.1f} tok/s")
    if logprobs:
        mean = sum(logprobs) / len(logprobs)
        parts.append(f"mean log p {mean:.2f} (p ≈ {math.exp(mean):.0%})")
    return "*" + " · ".join(p for p in parts if p) + "*"
