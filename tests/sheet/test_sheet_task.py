"""Reading tables, building cell prompts, parsing answers, planning and scoring evaluations: no model."""

from __future__ import annotations

import pytest

from playground.domain.sheet import clean_answer, is_numeric_column, normalise, numbers_match, parse_number
from playground.errors import KnownError
from playground.tasks.presets import load_presets
from playground.tasks.sheet import Sheet, fill_prompts, parse_table, read_csv, to_csv
from playground.tasks.sheet_eval import parse_shots, plan_eval, points_to_csv, score
from tests.sheet.conftest import capitals


# -- reading -------------------------------------------------------------------------------------------------
def test_ragged_rows_empty_and_duplicate_headers_are_repaired_with_warnings():
    loaded = parse_table("Country,,Country\nFrance,Paris\nJapan,Tokyo,Asia,extra\n\n")
    sheet = loaded.sheet
    assert sheet.columns == ["Country", "Column 2", "Country (2)", "Column 4"]
    assert sheet.rows == [["France", "Paris", "", ""], ["Japan", "Tokyo", "Asia", "extra"]]
    text = " ".join(loaded.warnings)
    assert "no name" in text and "more than once" in text and "padded" in text


def test_tab_separated_paste_and_quoted_csv():
    assert parse_table("State\tPopulation\nOhio\t11.80\n").sheet.rows == [["Ohio", "11.80"]]
    sheet = parse_table('City,Note\n"Washington, D.C.","says ""hi"""\n').sheet
    assert sheet.rows == [["Washington, D.C.", 'says "hi"']]
    assert parse_table(to_csv(sheet)).sheet == sheet  # round trip


def test_non_utf8_file_is_read_with_a_named_fallback(tmp_path):
    path = tmp_path / "cities.csv"
    path.write_bytes("City,Country\nZürich,Switzerland\n".encode("cp1252"))
    loaded = read_csv(path)
    assert loaded.sheet.rows == [["Zürich", "Switzerland"]]
    assert "not UTF-8" in loaded.warnings[0] and "cp1252" in loaded.warnings[0]


def test_unreadable_and_empty_inputs_give_clear_errors(tmp_path):
    with pytest.raises(KnownError, match="Cannot read"):
        read_csv(tmp_path / "missing.csv")
    with pytest.raises(KnownError, match="empty"):
        parse_table("\n\n")


# -- prompts -------------------------------------------------------------------------------------------------
def test_prompt_lists_complete_rows_then_the_open_cell():
    sheet = Sheet(["State", "Population"], [["California", "39.54"], ["Texas", "29.15"], ["Ohio", ""]],
                  {"Population": "millions"})
    [prompt] = fill_prompts(sheet)
    assert (prompt.row, prompt.column) == (2, 1)
    assert prompt.text == ("State: California\nPopulation (millions): 39.54\n\n"
                           "State: Texas\nPopulation (millions): 29.15\n\n"
                           "State: Ohio\nPopulation (millions):")


def test_cells_of_one_column_share_their_prefix_and_blank_rows_are_skipped():
    sheet = Sheet(["Country", "Capital", "Continent"],
                  [["France", "Paris", "Europe"], ["Japan", "Tokyo", "Asia"], ["Italy", "", ""],
                   ["Peru", "", "South America"], ["Spain", "", ""], ["", "", ""]])
    prompts = fill_prompts(sheet)
    assert [(p.row, p.column) for p in prompts] == [(2, 1), (2, 2), (3, 1), (4, 1), (4, 2)]
    italy, spain = prompts[0], prompts[3]
    assert italy.prefix == spain.prefix and italy.query == "Country: Italy\nCapital:"
    peru = prompts[2]  # its known continent goes into the examples too, in column order
    assert peru.query == "Country: Peru\nContinent: South America\nCapital:"
    assert peru.examples[0] == "Country: France\nContinent: Europe\nCapital: Paris\n\n"


def test_fill_needs_a_complete_row():
    with pytest.raises(KnownError, match="complete row"):
        fill_prompts(Sheet(["A", "B"], [["x", ""], ["", "y"]]))


def test_examples_are_capped():
    sheet = capitals(empty=1)
    [prompt] = fill_prompts(sheet, max_examples=3)
    assert len(prompt.examples) == 3 and prompt.examples[0].startswith("Country: France")


# -- answers -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "value", "mantissa"), [
    ("10.31 million", 10.31e6, 10.31), ("1,234.5", 1234.5, 1234.5), ("$3", 3, 3), ("12%", 12, 12),
    ("~4k", 4000, 4), ("−2.5", -2.5, -2.5), ("0.99 bn people", 0.99e9, 0.99)])
def test_numbers_with_units_and_separators(text, value, mantissa):
    n = parse_number(text)
    assert n is not None and n.value == pytest.approx(value) and n.mantissa == pytest.approx(mantissa)


def test_words_are_not_numbers():
    assert parse_number("Paris") is None and parse_number("") is None
    assert parse_number("Mexico 2") is None


def test_clean_answer_drops_trailing_text():
    assert clean_answer(" 10.31 million people (2020)\nState: Ohio", numeric=True) == "10.31 million"
    assert clean_answer(" 39.54, I think", numeric=True) == "39.54"
    assert clean_answer(" Paris.") == "Paris"
    assert clean_answer(" New Delhi\n\nCountry:") == "New Delhi"
    assert clean_answer(" unknown", numeric=True) == "unknown"  # not a number: kept as written


def test_numeric_columns_and_matching():
    assert is_numeric_column(["39.54", "", "29.15"]) and not is_numeric_column(["39.54", "n/a"])
    assert not is_numeric_column(["", ""])
    assert numbers_match("10.31 million", "10.31", 0.01)  # a unit on one side only
    assert numbers_match("10,310,000", "10.31 million", 0.01)
    assert numbers_match("10.5", "10.31", 0.05) and not numbers_match("10.9", "10.31", 0.05)
    assert numbers_match("Paris", "10.31", 0.05) is False
    assert numbers_match("10", "Paris", 0.05) is None


def test_normalised_match_ignores_case_accents_punctuation_articles_and_number_format():
    assert normalise("Brasília") == normalise("brasilia")
    assert normalise("The Hague.") == normalise("hague")
    assert normalise("1,000") == normalise("1000")
    assert normalise("Paris") != normalise("Lyon")


# -- evaluation ----------------------------------------------------------------------------------------------
def test_shots_parse():
    assert parse_shots("8, 0,1,2,4,4") == (0, 1, 2, 4, 8)
    with pytest.raises(KnownError):
        parse_shots("one,two")


def test_eval_plan_hides_each_query_and_shares_examples():
    sheet = capitals(empty=0)
    plan = plan_eval(sheet, "capital", shots=(0, 2, 20), max_queries=5)
    assert plan.column == 1 and plan.shots == (0, 2) and "k = 20 skipped" in plan.notes[0]
    for case in plan.cases:
        assert case.truth == sheet.rows[case.row][1]
        assert len(case.prompt.examples) == case.k
        assert f"Country: {sheet.rows[case.row][0]}\n" not in case.prompt.prefix  # its own answer is hidden
        assert case.prompt.query == f"Country: {sheet.rows[case.row][0]}\nCapital:"
    assert len({c.prompt.prefix for c in plan.cases if c.k == 2}) == 1  # 12 rows > 2 + 5: one shared prefix
    with pytest.raises(KnownError, match="No column"):
        plan_eval(sheet, "Population")


def test_score_counts_exact_normalised_and_numeric():
    sheet = Sheet(["State", "Population"], [["A", "1.50"], ["B", "2.00"], ["C", "3.00"], ["D", "4.00"]])
    plan = plan_eval(sheet, "Population", shots=(0, 1), max_queries=4)
    assert plan.numeric
    truths = [c.truth for c in plan.cases]
    answers = [t if i % 2 == 0 else str(float(t) * 1.01) for i, t in enumerate(truths)]
    answers[-1] = None  # stopped before the last one
    points = score(plan, "m", answers, tolerance=0.02)
    assert [(p.k, p.n) for p in points] == [(0, 4), (1, 3)]
    assert points[0].exact == 0.5 and points[0].numeric == 1.0
    assert points_to_csv(points).splitlines()[0] == "model,k,n,exact,normalised,numeric"


# -- presets -------------------------------------------------------------------------------------------------
def test_sheet_presets_load_and_cite_their_source():
    presets = load_presets("sheet")
    assert len(presets) == 2
    states = next(p for p in presets if "population" in p.name.lower())
    assert "2020 Census" in states.description and "Census Bureau" in states.description
    rows = dict(map(tuple, states.fields["rows"]))
    assert rows["California"] == "39.54" and rows["Texas"] == "29.15" and rows["Georgia"] == ""
    for preset in presets:
        sheet = Sheet(preset.fields["columns"], preset.fields["rows"], preset.fields.get("instructions", {}))
        assert fill_prompts(sheet)  # each preset has empty cells to fill and complete rows to learn from
