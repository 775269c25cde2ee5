"""Markdown export of every kind of run (issue 16, item 2: a session of 17 runs exported 5, the Prompt ones)."""

from __future__ import annotations

from PIL import Image

from playground import paths
from playground.domain.image import ImageResult
from playground.domain.sheet import CellAnswer
from playground.domain.text import Completion, FinishReason, GenerationRequest, GenerationResult, Timings, TokenEvent
from playground.store.markdown import export_markdown
from playground.store.records import Run, run_from_result
from playground.tasks.compare_store import run_record
from playground.tasks.image_runs import image_run, save_images
from playground.tasks.layout_html import LayoutPrompt
from playground.tasks.layout_run import layout_request, layout_run
from playground.tasks.sheet_runs import fill_run

PAGE = "<html><body><h1>Welcome</h1>\n<pre>```not a fence```</pre></body></html>"


def result(text: str, model: str = "smollm2") -> GenerationResult:
    tokens = tuple(TokenEvent(0, i, t, i, -0.1 * (i + 1), ()) for i, t in enumerate(text.split(" ")))
    return GenerationResult(model, (Completion(text, FinishReason.STOP, tokens, Timings(0.1, 0.05, 30.0)),), seed=4,
                            prompt_tokens=5)


def every_kind(store) -> int:
    s = store.create("Lecture | demos")
    prompt = GenerationRequest(source="Country: France\nCapital: Paris\n", prompt="Country: Italy\nCapital:")
    store.add_run(s.id, run_from_result(prompt, result(" Rome"), "done"))
    request = layout_request(LayoutPrompt(messages=(), text="a heading", stop=()))
    store.add_run(s.id, layout_run(request, {"description": "A heading Welcome", "instruction": ""},
                                   result(PAGE), "smollm2", raw=PAGE))
    table = {"header": ["country", "capital"], "rows": [["France", "Paris"], ["Italy", ""]], "instructions": {}}
    answer = CellAnswer(index=0, row=1, column=1, raw=" Rome", value="Rome", confidence=0.87, tokens=(), top=())
    store.add_run(s.id, fill_run(table, "smollm2", {}, [answer], 0.5, "done"))
    image = Image.new("RGB", (8, 8), "red")
    img = ImageResult("demo-shapes", (image,), (11,), {"prompt": "a red square", "negative_prompt": "blurry",
                                                        "steps": 20, "guidance": 7.5, "width": 8, "height": 8,
                                                        "scheduler": "default"})
    entries = save_images(img, paths.data_dir())
    store.add_run(s.id, image_run(type("R", (), {"prompt": "a red square", "negative_prompt": "blurry"})(), img,
                                  entries))
    store.add_run(s.id, run_record("", "The cat", [{"temperature": 0.0}, {"temperature": 1.0, "seed": 4}],
                                   {"model": "smollm2"},
                                   [result("sat on the mat").to_json(), result("ran off").to_json()]))
    store.add_run(s.id, Run(mode="compare", model_id="demo-shapes", inputs={
        "kind": "image", "prompt": "a red square",
        "grid": {"x_axis": "seed", "x_values": [1, 2], "y_axis": "guidance", "y_values": [4.0]}},
        outputs={"cells": [{"row": 0, "col": 0, **entries[0]}], "images": [entries[0]]}))
    store.add_run(s.id, Run(mode="compare", model_id="", inputs={"kind": "layout", "description": "a heading",
                                                                 "columns": ["temperature=0", "seed=2"]},
                            outputs={"html": ["<h1>A</h1>", "<h1>B</h1>"]}))
    return s.id


def test_every_run_kind_is_in_the_markdown(store):
    md = export_markdown(store, every_kind(store))
    assert md.startswith("# Lecture \\| demos") or md.startswith("# Lecture | demos")
    assert md.count("\n## ") == 7  # one section per run
    assert "Country: Italy\nCapital:" in md and " Rome" in md  # prompt
    assert "```html" not in md.split("## 2.")[0]
    layout = md.split("## 2.")[1].split("## 3.")[0]
    assert "````html\n" + PAGE + "\n````" in layout  # the page in a fence longer than the ``` inside it
    sheet = md.split("## 3.")[1].split("## 4.")[0]
    assert "| country | capital |" in sheet and "| Italy | *Rome* (87%) |" in sheet
    image = md.split("## 4.")[1].split("## 5.")[0]
    assert "a red square" in image and "blurry" in image and "seed 11" in image and "`steps=20`" in image
    assert f"({(paths.data_dir() / entries_path(md)).resolve().as_uri()}" in image.replace("](<", "](")
    columns = md.split("## 5.")[1].split("## 6.")[0]
    assert "sat on the mat" in columns and "ran off" in columns and "seed=4" in columns and "tok/s" in columns
    grid = md.split("## 6.")[1].split("## 7.")[0]
    assert "seed=1" in grid and "guidance=4.0" in grid and "![" in grid
    variants = md.split("## 7.")[1]
    assert "<h1>A</h1>" in variants and "<h1>B</h1>" in variants


def entries_path(md: str) -> str:
    """The images/<sha>.png path quoted in the image section."""
    start = md.index("`images/") + 1
    return md[start:md.index("`", start)]
