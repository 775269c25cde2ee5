"""Fine-tuned adapters in the main window: listed in the model picker right after their base once saved, and
deleted from the "Fine-tuned adapters…" dialog (reached from the model picker's menu)."""

from __future__ import annotations

from PySide6.QtWidgets import QToolButton

from playground.engine.lora import LoraTrainer
from playground.models.embedded import EMBEDDED_ID
from tests.common.scripted import ScriptedRunner
from ui.shell.main_window import MainWindow


def test_a_saved_adapter_is_a_variant_in_the_picker_until_deleted(qtbot, tiny_model):
    window = MainWindow(ScriptedRunner([" x"]), autoload=False)
    qtbot.addWidget(window)
    with LoraTrainer(tiny_model) as trainer:  # untrained: only its files matter here
        info = trainer.save(EMBEDDED_ID, "capitals", {"column": "Capital", "rows": 6})
    assert window.model_picker.findData(info.id) < 0
    window.sheet_tab.transfer.adapter_saved.emit(info.id)  # what Save adapter… does when it is done
    assert window.model_picker.findData(info.id) == window.model_picker.findData(EMBEDDED_ID) + 1
    assert "adapter" in window.model_picker.itemText(window.model_picker.findData(info.id))

    menu = next(b for b in window.findChildren(QToolButton) if b.text() == "Add model…").menu()
    action = next(a for a in menu.actions() if a.text() == "Fine-tuned &adapters…")
    action.trigger()
    dialog = window.adapters_dialog
    assert dialog is not None and dialog.isVisible() and dialog.table.item(0, 0).text() == info.id
    assert dialog.table.item(0, 1).text() == "Capital" and dialog.table.item(0, 2).text() == "6"
    assert dialog.delete(info.id)
    assert window.model_picker.findData(info.id) < 0 and dialog.table.rowCount() == 0
    window.close()
