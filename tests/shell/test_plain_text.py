"""Model and user text is shown as written, never rendered as HTML (issue 16, item 5: "unclosed , ,")."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.common.scripted import ScriptedRunner
from ui.shell.main_window import MainWindow


@pytest.fixture
def window(qtbot):
    w = MainWindow(ScriptedRunner(["<html><body><div><p>cut"]), autoload=False)
    qtbot.addWidget(w)
    w.resize(1024, 700)
    w.show()
    return w


def rendered(label) -> str:
    """What the label paints: its text when plain, its text without tags when Qt renders it as HTML."""
    from PySide6.QtGui import QTextDocument

    if label.textFormat() == Qt.TextFormat.PlainText:
        return label.text()
    doc = QTextDocument()
    doc.setHtml(label.text())
    return doc.toPlainText() if Qt.mightBeRichText(label.text()) else label.text()


def test_layout_validity_names_the_unclosed_tags(qtbot, window):
    tab = window.layout_tab
    window.tabs.setCurrentWidget(tab)
    tab.description.setPlainText("a page")
    with qtbot.waitSignal(tab.page_ready, timeout=10_000):
        qtbot.mouseClick(tab.generate_button, Qt.MouseButton.LeftButton)
    assert "unclosed <div>, <body>" in rendered(tab.validity)
    assert tab.validity.isVisible() and tab.validity.wordWrap()
    assert tab.validity.height() >= tab.validity.heightForWidth(tab.validity.width())  # not clipped


def test_compare_titles_images_and_sessions_show_text_as_typed(qtbot, window):
    compare = window.compare_tab
    window.tabs.setCurrentWidget(compare)
    column = compare.columns[0]
    column.model.setText("<big>")  # as typed (keyClicks loses "<" offscreen)
    assert "<big>" in rendered(column.title)

    image = window.image_tab
    image.apply_settings({"prompt": "a <i>red</i> circle", "negative_prompt": "<blur>", "seed": 3})
    image._show_entry({"path": "images/none.png", "settings": {"prompt": "a <i>red</i> circle",
                                                                 "negative_prompt": "<blur>", "seed": 3}})
    assert "a <i>red</i> circle" in rendered(image.caption)

    window.sessions.rename(window.current_session, "<h1>Big</h1>")
    window.sessions.delete_current()
    assert "<h1>Big</h1>" in rendered(window.sessions.undo_label)
