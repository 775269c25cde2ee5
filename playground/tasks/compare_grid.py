"""The image X/Y grid (A1111's X/Y plot): rows and columns over one setting each, one image per cell.

Qt-free: the plan of cells, their requests, and the labelled PNG of the finished grid (PIL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playground.domain.image import ImageRequest
from playground.errors import ParameterError

AXES = ("seed", "guidance", "steps", "scheduler", "model")
MAX_PER_AXIS = 8
_TYPES = {"seed": int, "guidance": float, "steps": int, "scheduler": str, "model": str}


def parse_axis(axis: str, text: str) -> list[Any]:
    """``"1, 2, 3"`` -> typed values for ``axis`` (empty text = a single unnamed value)."""
    if axis not in AXES:
        raise ParameterError(f"an axis is one of {', '.join(AXES)}; not {axis!r}")
    values = []
    for raw in (v.strip() for v in text.split(",")):
        if not raw:
            continue
        try:
            values.append(_TYPES[axis](raw))
        except ValueError as exc:
            raise ParameterError(f"{axis} value {raw!r} is not a {_TYPES[axis].__name__}") from exc
    if len(values) > MAX_PER_AXIS:
        raise ParameterError(f"at most {MAX_PER_AXIS} values per axis")
    return values


@dataclass(frozen=True)
class GridCell:
    row: int
    col: int
    model: str
    request: ImageRequest

    def settings(self) -> dict[str, Any]:
        """What the Image tab's ``apply_settings`` takes to reproduce this cell."""
        return {**self.request.settings(), "batch": 1, "model": self.model}


@dataclass(frozen=True)
class GridPlan:
    base: ImageRequest
    model: str
    x_axis: str
    x_values: tuple[Any, ...]
    y_axis: str
    y_values: tuple[Any, ...]

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return max(len(self.y_values), 1), max(len(self.x_values), 1)

    def cells(self) -> list[GridCell]:
        """Row by row; cells on the same model come together so the model loads once per row at most."""
        rows, cols = self.shape
        out = []
        for r in range(rows):
            for c in range(cols):
                settings = {"model": self.model}
                if self.y_values:
                    settings[self.y_axis] = self.y_values[r]
                if self.x_values:
                    settings[self.x_axis] = self.x_values[c]
                model = settings.pop("model")
                out.append(GridCell(r, c, model, _replace(self.base, settings)))
        return out

    def labels(self) -> tuple[list[str], list[str]]:
        """(column labels, row labels) such as ``seed=3``."""
        return ([f"{self.x_axis}={v}" for v in self.x_values] or [""],
                [f"{self.y_axis}={v}" for v in self.y_values] or [""])

    def to_dict(self) -> dict[str, Any]:
        base = {k: v for k, v in self.base.settings().items() if k != "batch"}
        return {"model": self.model, "x_axis": self.x_axis, "x_values": list(self.x_values), "y_axis": self.y_axis,
                "y_values": list(self.y_values), "base": base}


def plan_from_dict(d: dict[str, Any]) -> GridPlan:
    """A plan as ``to_dict`` saved it in a run (unknown keys ignored)."""
    fields = ("negative_prompt", "steps", "guidance", "seed", "width", "height", "scheduler")
    base = d.get("base") if isinstance(d.get("base"), dict) else {}
    request = ImageRequest(str(base.get("prompt") or ""),
                           **{k: base[k] for k in fields if k in base and base[k] is not None})
    return GridPlan(request, str(d.get("model", "")), str(d.get("x_axis", "")), tuple(d.get("x_values") or ()),
                    str(d.get("y_axis", "")), tuple(d.get("y_values") or ()))


def make_plan(base: ImageRequest, model: str, x_axis: str, x_text: str, y_axis: str, y_text: str) -> GridPlan:
    """Validate and build a plan; raises ValueError naming what is wrong."""
    if x_axis == y_axis and x_text.strip() and y_text.strip():
        raise ParameterError("pick two different settings for X and Y")
    plan = GridPlan(base, model, x_axis, tuple(parse_axis(x_axis, x_text)), y_axis, tuple(parse_axis(y_axis, y_text)))
    for cell in plan.cells():
        cell.request.validate()
    return plan


def _replace(req: ImageRequest, changes: dict[str, Any]) -> ImageRequest:
    from dataclasses import replace

    return replace(req, batch=1, **changes)


def grid_png(images: list[list[Any]], col_labels: list[str], row_labels: list[str], title: str = "") -> Any:
    """One PIL image: the cells (PIL images or None for empty) under column labels, beside row labels."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    cell_w = max((im.width for row in images for im in row if im is not None), default=64)
    cell_h = max((im.height for row in images for im in row if im is not None), default=64)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_w(s: str) -> int:
        return int(probe.textlength(s, font=font)) if s else 0

    left = max([text_w(s) for s in row_labels] + [0]) + (12 if any(row_labels) else 4)
    top = 22 + (18 if title else 0) if any(col_labels) or title else 4
    gap = 4
    cols = max(len(r) for r in images) if images else 0
    width = left + cols * (cell_w + gap)
    height = top + len(images) * (cell_h + gap)
    sheet = Image.new("RGB", (max(width, 1), max(height, 1)), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((4, 4), title, fill="black", font=font)
    for c, label in enumerate(col_labels[:cols]):
        x = left + c * (cell_w + gap) + (cell_w - text_w(label)) // 2
        draw.text((x, top - 16), label, fill="black", font=font)
    for r, row in enumerate(images):
        y = top + r * (cell_h + gap)
        if r < len(row_labels):
            draw.text((4, y + cell_h // 2 - 6), row_labels[r], fill="black", font=font)
        for c, im in enumerate(row):
            x = left + c * (cell_w + gap)
            if im is None:
                draw.rectangle((x, y, x + cell_w - 1, y + cell_h - 1), outline="#bbbbbb")
            else:
                sheet.paste(im.convert("RGB"), (x, y))
    return sheet
