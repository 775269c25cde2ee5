"""The image X/Y grid: a plan of cells over two settings, filled on a tiny pipeline, exported with labels."""

from __future__ import annotations

import pytest

from playground.domain.image import ImageRequest
from playground.errors import ParameterError
from playground.tasks.compare_grid import grid_png, make_plan


def test_plan_crosses_rows_and_columns():
    plan = make_plan(ImageRequest("a red circle", steps=2), "demo", "seed", "1, 2, 3", "guidance", "1, 5")
    cells = plan.cells()
    assert plan.shape == (2, 3) and len(cells) == 6
    assert [(c.row, c.col, c.request.seed, c.request.guidance) for c in cells[:4]] == [
        (0, 0, 1, 1.0), (0, 1, 2, 1.0), (0, 2, 3, 1.0), (1, 0, 1, 5.0)]
    assert plan.labels() == (["seed=1", "seed=2", "seed=3"], ["guidance=1.0", "guidance=5.0"])
    assert cells[4].settings()["seed"] == 2 and cells[4].settings()["model"] == "demo"
    with pytest.raises(ParameterError, match="two different"):
        make_plan(ImageRequest("x"), "demo", "seed", "1", "seed", "2")
    with pytest.raises(ParameterError, match="steps value 'many'"):
        make_plan(ImageRequest("x"), "demo", "steps", "many", "seed", "")
    model_plan = make_plan(ImageRequest("x"), "demo", "model", "a, b", "seed", "")
    assert [c.model for c in model_plan.cells()] == ["a", "b"]


def test_grid_on_tiny_pipeline_exports_labelled_png(tiny_sd, tmp_path):
    import numpy as np
    from PIL import Image

    from playground.engine.image import generate

    plan = make_plan(ImageRequest("a blue square", steps=2, width=64, height=64), tiny_sd.id, "seed", "1, 2",
                     "steps", "1, 2")
    images = [[None, None], [None, None]]
    for cell in plan.cells():
        images[cell.row][cell.col] = generate(tiny_sd, cell.request).images[0]
    assert not np.array_equal(np.asarray(images[0][0]), np.asarray(images[0][1]))  # seeds differ -> images differ
    cols, rows = plan.labels()
    sheet = grid_png(images, cols, rows, title="a blue square")
    path = tmp_path / "grid.png"
    sheet.save(path)
    out = Image.open(path)
    assert out.width > 2 * 64 and out.height > 2 * 64  # room for the labels
    corner = out.convert("L").crop((0, 0, 40, out.height))  # the row labels: dark text on white
    assert np.asarray(corner).min() < 100
