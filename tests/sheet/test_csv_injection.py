"""CSV export neutralises formula cells by OWASP's rule, says so, and reads its own files back unchanged
(issue 15, item 18)."""

from __future__ import annotations

import csv
import io

from playground.cli.main import main
from playground.tasks.sheet import Sheet, parse_table, to_csv
from playground.tasks.sheet_eval import EvalPoint, points_to_csv

HOSTILE = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "=HYPERLINK(\"http://x\",\"y\")", "-5"]


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_every_cell_starting_like_a_formula_gets_a_quote_and_reads_back():
    sheet = Sheet(["Name", "=Value"], [[value, "plain"] for value in HOSTILE] + [["5", "3.2"], ["a=b", "x-y"]])
    rows = cells(to_csv(sheet))
    assert rows[0] == ["Name", "'=Value"]
    assert [r[0] for r in rows[1:len(HOSTILE) + 1]] == ["'" + v for v in HOSTILE]  # OWASP: no number exception
    assert rows[-2:] == [["5", "3.2"], ["a=b", "x-y"]]  # nothing else changes
    assert not any(cell[:1] in {"=", "+", "-", "@", "\t", "\r"} for row in rows for cell in row)
    back = parse_table(to_csv(sheet)).sheet
    assert back.columns == ["Name", "=Value"]
    assert [r[0] for r in back.rows[:len(HOSTILE)]] == HOSTILE  # the quote is removed again, nothing else


def test_model_names_in_the_evaluation_csv_are_neutralised_too():
    text = points_to_csv([EvalPoint("=evil-model", 0, 4, 0.5, 0.5, None)])
    assert cells(text)[1][0] == "'=evil-model"


def test_sheet_fill_writes_a_neutralised_file_and_says_so(tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("Formula,Note\n=cmd|' /C calc'!A0,@here\nplain,-5\n")
    out = tmp_path / "out.csv"
    assert main(["sheet", "fill", str(src), "--out", str(out)]) == 0  # no empty cell: no model needed
    assert cells(out.read_text()) == [["Formula", "Note"], ["'=cmd|' /C calc'!A0", "'@here"], ["plain", "'-5"]]
    err = capsys.readouterr().err
    assert "3 cell(s) start like a spreadsheet formula" in err and "OWASP" in err


def test_the_sheet_tab_export_says_how_many_cells_it_neutralised(qtbot, tmp_path):
    from ui.common.params_panel import ParamsPanel
    from ui.sheet.tab import SheetTab

    tab = SheetTab(ParamsPanel(), lambda: "none", lambda model, on_progress: None)
    qtbot.addWidget(tab)
    tab.set_sheet(Sheet(["Cell", "Other"], [["=1+2", "ok"], ["@x", "fine"]]))
    with qtbot.waitSignal(tab.message, timeout=2000) as said:
        assert tab.export_csv(tmp_path / "out.csv")
    assert "2 cell(s) starting with = + - @" in said.args[0]
    assert cells((tmp_path / "out.csv").read_text())[1] == ["'=1+2", "ok"]
    tab.shutdown()
