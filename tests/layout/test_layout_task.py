"""Prompt building and HTML extraction/repair."""

from __future__ import annotations

from playground.tasks.layout_html import Example, Versions, build_prompt, clean, extract_html, load_examples

EXAMPLES = [Example("A heading Hi", "<html><body><h1>Hi</h1></body></html>")]


def test_new_page_prompt_has_examples_then_the_description_in_both_shapes():
    p = build_prompt("A red button", EXAMPLES)
    assert p.text.endswith("Description: A red button\nHTML:\n")
    assert p.text.startswith("Description: A heading Hi\nHTML:\n<html><body><h1>Hi</h1></body></html>")
    roles = [m["role"] for m in p.messages]
    assert roles == ["system", "user", "assistant", "user"] and p.messages[-1]["content"] == "A red button"


def test_follow_up_prompt_carries_the_current_page_and_the_change():
    p = build_prompt("A button", EXAMPLES, current_html="<button>Go</button>", instruction="make it red")
    assert "<button>Go</button>" in p.messages[-1]["content"] and "make it red" in p.messages[-1]["content"]
    assert p.text.rstrip().endswith("The same page, changed: make it red\nHTML:")
    assert "<button>Go</button>" in p.text


def test_shipped_examples_load():
    examples = load_examples()
    assert len(examples) >= 3 and all(e.html.startswith("<html>") for e in examples)


def test_code_fences_and_chatter_are_stripped():
    text = "Sure! Here is your page:\n```html\n<html><body><h1>A</h1></body></html>\n```\nHope it helps."
    assert extract_html(text) == "<html><body><h1>A</h1></body></html>"
    assert extract_html("Okay <div>x</div>") == "<div>x</div>"
    assert extract_html("no markup at all") == ""


def test_valid_html_is_left_alone():
    page = clean("<html><body><ul><li>a<li>b</ul><img src=x><br></body></html>")
    assert page.valid and page.problems == ()


def test_truncated_output_is_closed_and_reported():
    page = clean("<html><body><div><h1>Title</h1><button style=\"col")
    assert page.html == "<html><body><div><h1>Title</h1></div></body></html>"
    assert clean("<div>Hello</div> Hope this helps!").html == "<div>Hello</div>"
    assert not page.valid
    assert any("cut off" in p for p in page.problems) and any("unclosed" in p for p in page.problems)


def test_misnested_tags_are_reported():
    page = clean("<html><body><button>Go</h1></button></body></html>")
    assert not page.valid and "stray </h1>" in page.problems


def test_answer_without_html_is_flagged():
    page = clean("I cannot do that.")
    assert page.html == "" and not page.valid


def test_versions_keep_everything_and_move_both_ways():
    v = Versions()
    for html in ("a", "b", "c"):
        v.add(html)
    assert v.undo() == "b" and v.undo() == "a" and v.undo() == "a"
    v.add("d")  # a new version after undo is appended: nothing is lost
    assert v.items == ["a", "b", "c", "d"] and v.current == "d"
    assert Versions.from_dict(v.to_dict()) == v
    assert Versions.from_dict({"items": "junk"}).items == [] and Versions.from_dict(None).current is None
