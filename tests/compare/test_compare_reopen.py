"""Re-opening a session shows the Compare tab as it was left (issue 16, item 9: the columns said "not run" and the
X/Y grid was empty): the text columns with their stats, and the grid's images, read back from their PNG files."""

from __future__ import annotations

import numpy as np
import pytest

from playground.store.db import open_database
from playground.store.repository import SessionStore
from ui.common.params_panel import ParamsPanel
from ui.compare.tab import CompareTab


@pytest.fixture
def make_tab(qtbot, tiny_model_dir, path_loader):
    tabs = []

    def make() -> CompareTab:
        params = ParamsPanel(CompareTab.params_spec)
        params.max_tokens.setValue(8)
        qtbot.addWidget(params)
        t = CompareTab(params, lambda: str(tiny_model_dir), text_loader=path_loader, budget_bytes=2**30)
        qtbot.addWidget(t)
        tabs.append(t)
        return t

    yield make
    for t in tabs:
        t.shutdown()


def test_a_reopened_session_shows_the_columns_with_stats_and_the_grid_images(qtbot, make_tab, tiny_sd_dir):
    db = open_database()
    try:
        store = SessionStore(db)
        session = store.create("Compare").id
        tab = make_tab()
        tab.prompt.setPlainText("The cat")
        tab.set_columns([{"temperature": 0.0}, {"temperature": 1.0, "seed": 4}])
        with qtbot.waitSignal(tab.run_ended, timeout=30_000) as text_run:
            tab.run_all()
        store.add_run(session, text_run.args[0])
        grid = tab.image_grid
        grid.model.setText(str(tiny_sd_dir))
        grid.steps.setValue(2)
        grid.x_axis.setCurrentText("seed")
        grid.x_values.setText("1, 2")
        grid.y_values.setText("")
        with qtbot.waitSignal(tab.run_ended, timeout=60_000) as grid_run:  # the grid's run comes last
            grid.run_grid()
        store.add_run(session, grid_run.args[0])
        texts, stats = [c.text() for c in tab.columns], [c.stats.text() for c in tab.columns]
        pixels = {k: np.asarray(v.convert("RGB")) for k, v in grid.images.items()}
        draft = tab.draft()

        again = make_tab()  # a relaunch: a fresh tab, the session's draft and runs from the database
        again.run_source = lambda: store.runs(session, "compare")
        again.restore(draft, store.last_run(session, "compare"))
        assert [c.text() for c in again.columns] == texts and all(texts)
        assert [c.stats.text() for c in again.columns] == stats and all("tok/s" in s for s in stats)
        restored = again.image_grid
        assert set(restored.images) == set(pixels) == {(0, 0), (0, 1)}
        for key, image in restored.images.items():
            assert np.array_equal(np.asarray(image), pixels[key])
            assert not restored.cells[key].pixmap().isNull()
        assert "2 of 2 cells" in restored.status.text()
    finally:
        db.dispose()
