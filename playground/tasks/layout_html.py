"""Layout → HTML: prompts from description → HTML examples, and cleaning the model's text into safe-to-show HTML.

Two prompt shapes, chosen by the model: chat models get their chat template (examples as earlier turns);
base models get plain few-shot text that ends where the HTML should begin.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from playground import paths

SYSTEM = ("You write a single self-contained HTML page for a described layout. Use inline CSS, no scripts, "
          "no external resources. Answer with the HTML only.")
FEWSHOT_DESCRIPTION = "Description: "
FEWSHOT_HTML = "HTML:\n"
EXAMPLE_SEPARATOR = "\n<!-- end -->\n\n"
VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
                       "track", "wbr"})
# Elements whose end tag HTML lets the parser infer; not counted as "unclosed".
OPTIONAL_END = frozenset({"p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot", "option", "html",
                          "head", "body", "colgroup", "rt", "rp", "optgroup"})


@dataclass(frozen=True)
class Example:
    description: str
    html: str


@dataclass(frozen=True)
class LayoutPrompt:
    """Both shapes of one request; the engine takes ``messages`` for a chat model, else ``text``."""

    messages: tuple[dict[str, str], ...]
    text: str
    stop: tuple[str, ...] = ("<!-- end -->", "</html>\n\nDescription:")


@dataclass(frozen=True)
class CleanHtml:
    html: str
    valid: bool  # True when the model's HTML needed no repair
    problems: tuple[str, ...] = field(default=())


def load_examples(path: Path | None = None) -> list[Example]:
    """The shipped few-shot pairs (assets/layout/examples.json)."""
    path = path or paths.assets_dir() / "layout" / "examples.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return [Example(e["description"], e["html"]) for e in data["examples"]]


def build_prompt(description: str, examples: list[Example], current_html: str | None = None,
                 instruction: str | None = None) -> LayoutPrompt:
    """A prompt for a new page from ``description``, or, with ``current_html`` and ``instruction``, for an
    edited version of the current page."""
    messages: list[dict[str, str]] = [{"role": "system", "content": SYSTEM}]
    for ex in examples:
        messages += [{"role": "user", "content": ex.description}, {"role": "assistant", "content": ex.html}]
    text = "".join(f"{FEWSHOT_DESCRIPTION}{ex.description}\n{FEWSHOT_HTML}{ex.html.strip()}{EXAMPLE_SEPARATOR}"
                   for ex in examples)
    if current_html is not None and instruction:
        ask = f"Here is the current page:\n{current_html.strip()}\n\nChange it: {instruction.strip()}"
        messages.append({"role": "user", "content": ask})
        text += (f"{FEWSHOT_DESCRIPTION}{description.strip()}\n{FEWSHOT_HTML}{current_html.strip()}"
                 f"{EXAMPLE_SEPARATOR}{FEWSHOT_DESCRIPTION}The same page, changed: {instruction.strip()}\n"
                 f"{FEWSHOT_HTML}")
    else:
        messages.append({"role": "user", "content": description.strip()})
        text += f"{FEWSHOT_DESCRIPTION}{description.strip()}\n{FEWSHOT_HTML}"
    return LayoutPrompt(messages=tuple(messages), text=text)


_FENCE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)(?:```|$)", re.DOTALL)
_START = re.compile(r"<(!doctype|html|head|body|div|h[1-6]|p|section|header|main|nav|form|button|table|ul|ol|"
                    r"span|a|img|style|footer|article|label|input)\b", re.IGNORECASE)


def extract_html(text: str) -> str:
    """The HTML part of a model's answer: inside a code fence if there is one, else from the first tag on;
    chatter before it is dropped (chatter after it is dropped by ``clean``)."""
    fenced = _FENCE.search(text)
    if fenced and "<" in fenced.group(1):
        text = fenced.group(1)
    start = _START.search(text)
    if not start:
        return ""
    text = text[start.start():]
    end = text.lower().rfind("</html>")
    return (text[: end + len("</html>")] if end >= 0 else text).strip()


class _TagBalance(HTMLParser):
    """Tracks open elements to close what the model left open, and notes what was wrong."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:  # noqa: ARG002
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_TAGS:
            return
        if tag in self.stack:
            while self.stack:
                top = self.stack.pop()
                if top == tag:
                    break
                if top not in OPTIONAL_END:
                    self.problems.append(f"<{top}> was not closed before </{tag}>")
        else:
            self.problems.append(f"stray </{tag}>")


def _balance(html: str) -> _TagBalance:
    parser = _TagBalance()
    parser.feed(html)
    parser.close()
    return parser


def clean(text: str) -> CleanHtml:
    """Extract the HTML and close any unclosed tags; ``valid`` says whether it was well-formed as written."""
    html = extract_html(text)
    if not html:
        return CleanHtml("", False, ("the model's answer contains no HTML",))
    problems: list[str] = []
    head, tail = html[: html.rfind(">") + 1], html[html.rfind(">") + 1:]
    if "<" in tail:  # the token limit cut a tag mid-way ("<button sty"): drop the fragment
        html = head + tail[: tail.index("<")]
        problems.append("the output was cut off inside a tag")
    elif tail.strip() and not _balance(head).stack:
        html = head  # prose after a complete page is chatter, not content
    parser = _balance(html)
    problems += parser.problems
    unclosed = [t for t in reversed(parser.stack) if t not in OPTIONAL_END or t in {"html", "body"}]
    if unclosed:
        problems.append("unclosed " + ", ".join(f"<{t}>" for t in unclosed))
    # Close every open element, innermost first, so the page renders as the model meant it.
    html += "".join(f"</{t}>" for t in reversed(parser.stack) if t not in OPTIONAL_END or t in {"html", "body"})
    return CleanHtml(html, not problems, tuple(problems))


@dataclass
class Versions:
    """Every HTML version of a page, with a cursor for undo/redo; a new version is appended, none is lost."""

    items: list[str] = field(default_factory=list)
    index: int = -1

    @property
    def current(self) -> str | None:
        return self.items[self.index] if 0 <= self.index < len(self.items) else None

    def add(self, html: str) -> None:
        self.items.append(html)
        self.index = len(self.items) - 1

    def undo(self) -> str | None:
        if self.index > 0:
            self.index -= 1
        return self.current

    def redo(self) -> str | None:
        if self.index < len(self.items) - 1:
            self.index += 1
        return self.current

    def to_dict(self) -> dict[str, object]:
        return {"items": list(self.items), "index": self.index}

    @classmethod
    def from_dict(cls, data: object) -> Versions:
        """Tolerates anything (drafts can be old or hand-edited): bad input gives an empty history."""
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            return cls()
        items = [x for x in data["items"] if isinstance(x, str)]
        index = data.get("index", len(items) - 1)
        index = index if isinstance(index, int) and 0 <= index < len(items) else len(items) - 1
        return cls(items, index)
