"""A model the Image tab cannot find says what an image model can be, never a raw library error (issue 16, item 7:
"Repo id must be in the form 'repo_name'…")."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from ui.image.tab import ImageTab
from ui.image.worker import ImageWorker


@pytest.mark.parametrize("typed", ["/home/me/models/sd15", "~/checkpoints/dream.safetensors", "not a model/at all"])
def test_a_bad_model_path_says_what_was_expected(qtbot, typed):
    tab = ImageTab(worker=ImageWorker())  # the real loader
    qtbot.addWidget(tab)
    tab.show()
    tab.prompt.setPlainText("a red circle")
    tab.model.setCurrentText("")
    qtbot.keyClicks(tab.model.lineEdit(), typed)
    with qtbot.waitSignal(tab.run_ended, timeout=60_000) as blocker:
        qtbot.mouseClick(tab.generate_button, Qt.MouseButton.LeftButton)
    tab.shutdown()
    message = tab.error.text()
    assert blocker.args[0].status == "failed" and not message.startswith("Internal error")
    assert "diffusers folder" in message and ".safetensors" in message and "Hugging Face id" in message
    assert "Repo id" not in message
