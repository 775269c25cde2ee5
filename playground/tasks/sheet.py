"""Spreadsheet fact completion: the table, reading and writing it, prompts for empty cells, answer parsing.

A filled row is a few-shot example. The prompt for an empty cell lists the complete rows as blocks of
``Column: value`` lines (the format small models follow best, as in the Prompt tab's country → capital preset),
then the target row's known cells and the target column's label, left open for the model:

    State: California
    Population (millions): 39.54

    State: Ohio
    Population (millions):

Cells that share a target column and the same known columns share every example block, so the engine can
prefill that prefix once (``playground.engine.fill``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from playground.domain.sheet import CellPrompt, is_numeric_column
from playground.errors import KnownError

MAX_ROWS = 100_000  # a paste or file beyond this is refused with a message rather than freezing the grid
MAX_COLUMNS = 200
MAX_FILE_BYTES = 64 * 1024**2  # a CSV read whole; /dev/zero or a huge file is refused, not read
DEFAULT_MAX_EXAMPLES = 8  # example rows per prompt: enough for the format, short enough to prefill fast
FALLBACK_ENCODINGS = ("cp1252", "latin-1")  # latin-1 decodes any byte string, so reading never fails


@dataclass
class Sheet:
    """A table of strings: ``columns`` names the header, every row has exactly ``len(columns)`` cells."""

    columns: list[str]
    rows: list[list[str]]
    instructions: dict[str, str] = field(default_factory=dict)  # column name -> e.g. "in millions"

    def label(self, column: int) -> str:
        """The column's name as the prompt shows it, with its instruction in parentheses when it has one."""
        name = self.columns[column]
        note = self.instructions.get(name, "").strip()
        return f"{name} ({note})" if note else name

    def empty_cells(self) -> list[tuple[int, int]]:
        """Every (row, column) whose value is blank, in reading order."""
        return [(r, c) for r, row in enumerate(self.rows) for c, v in enumerate(row) if not v.strip()]

    def is_complete(self, row: int) -> bool:
        return all(v.strip() for v in self.rows[row])

    def numeric_columns(self) -> list[int]:
        """The columns whose known values are all numbers: their answers are cleaned to the number alone."""
        return [c for c in range(len(self.columns)) if is_numeric_column([r[c] for r in self.rows])]


@dataclass(frozen=True)
class Loaded:
    """A sheet read from text, with the repairs made on the way (shown to the user, never silent)."""

    sheet: Sheet
    warnings: tuple[str, ...] = ()


# -- reading and writing -------------------------------------------------------------------------------------
def decode_bytes(data: bytes) -> tuple[str, str | None]:
    """Return (text, warning): UTF-8 (with or without BOM) when it decodes, else a named fallback encoding."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        for encoding in FALLBACK_ENCODINGS:
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                continue
            return text, (f"The file is not UTF-8 (byte {exc.start} is invalid); it was read as {encoding}. "
                          "Check accented letters, and save it as UTF-8 to be sure")
    raise AssertionError("latin-1 decodes every byte string")  # pragma: no cover


def parse_table(text: str, delimiter: str | None = None) -> Loaded:
    """Parse CSV or tab-separated text (first row = header) into a rectangular Sheet, repairing what it must.

    Ragged rows are padded or trimmed, empty header cells get a name, duplicate names a suffix; each repair
    adds a warning. Raises KnownError when there is nothing to read or the table is beyond the limits.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise KnownError("The table is empty: the first line should hold the column names")
    if delimiter is None:
        delimiter = _sniff_delimiter(text)
    try:
        records = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:
        raise KnownError(f"Could not read the table: {exc}") from exc
    while records and not any(cell.strip() for cell in records[-1]):
        records.pop()  # trailing blank lines
    header, body = records[0], [r for r in records[1:] if any(cell.strip() for cell in r)]
    warnings: list[str] = []
    if len(body) > MAX_ROWS:
        raise KnownError(f"The table has {len(body):,} rows; the sheet holds at most {MAX_ROWS:,}")
    width = max([len(header), *(len(r) for r in body)])
    if width > MAX_COLUMNS:
        raise KnownError(f"The table has {width} columns; the sheet holds at most {MAX_COLUMNS}")
    ragged = sum(1 for r in body if len(r) != width)
    if ragged:
        long_rows = sum(1 for r in body if len(r) > len(header))
        warnings.append(f"{ragged} row(s) had a different number of cells than the widest row; short rows were "
                        "padded with empty cells" + (f" and {long_rows} row(s) are wider than the header, so "
                                                      "columns were added" if long_rows else ""))
    columns, renamed = unique_names([_unquote(h.strip()) for h in header] + [""] * (width - len(header)))
    warnings += renamed
    rows = [[_unquote(cell.strip()) for cell in r] + [""] * (width - len(r)) for r in body]
    return Loaded(Sheet(columns, rows), tuple(warnings))


def read_csv(path: Path) -> Loaded:
    """Read a CSV (or .tsv) file into a Sheet; raises KnownError when the file cannot be read."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise KnownError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise KnownError(f"{path} is over {MAX_FILE_BYTES // 1024**2} MB; the sheet reads tables up to that size")
    text, warning = decode_bytes(data)
    loaded = parse_table(text, "\t" if path.suffix.lower() == ".tsv" else None)
    return Loaded(loaded.sheet, ((warning,) if warning else ()) + loaded.warnings)


def to_csv(sheet: Sheet) -> str:
    """The sheet as CSV text (header first), quoted where needed, formula-like cells neutralised (``safe_cell``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([safe_cell(c) for c in sheet.columns])
    writer.writerows([safe_cell(c) for c in row] for row in sheet.rows)
    return out.getvalue()


# OWASP's CSV injection rule (owasp.org/www-community/attacks/CSV_Injection): no cell may begin with = + - @, tab,
# CR or LF, or a spreadsheet may run it as a formula (=HYPERLINK(...), =cmd|...). The rule has no exception for
# numbers, so "-5" is written "'-5" too. The csv writer quotes separators and quotes, so none can start a cell.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")


def safe_cell(value: str) -> str:
    """``value`` with a leading ``'`` when it starts like a formula (spreadsheets then show it as text)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def formula_cells(sheet: Sheet) -> int:
    """How many cells (header included) ``to_csv`` writes with a leading ``'``."""
    return sum(safe_cell(c) != c for row in [sheet.columns, *sheet.rows] for c in row)


def _unquote(value: str) -> str:
    """Undo ``safe_cell`` on import, so a table written by Playground reads back as it was."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


def write_csv(sheet: Sheet, path: Path) -> None:
    """Write the sheet as UTF-8 CSV; raises KnownError when the file cannot be written."""
    try:
        path.write_text(to_csv(sheet), encoding="utf-8")
    except OSError as exc:
        raise KnownError(f"Cannot write {path}: {exc.strerror or exc}") from exc


def unique_names(names: list[str]) -> tuple[list[str], list[str]]:
    """Return (names, warnings): blank names become "Column N", repeated ones get " (2)", " (3)" ..."""
    out: list[str] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for i, name in enumerate(names):
        base = name or f"Column {i + 1}"
        if not name:
            warnings.append(f"Column {i + 1} had no name; it is called {base!r}")
        candidate, n = base, 2
        while candidate.casefold() in seen:
            candidate, n = f"{base} ({n})", n + 1
        if candidate != base:
            warnings.append(f"Column name {base!r} appears more than once; the repeat is called {candidate!r}")
        seen.add(candidate.casefold())
        out.append(candidate)
    return out, warnings


def _sniff_delimiter(text: str) -> str:
    """A tab in the first line means a spreadsheet paste or TSV; otherwise ``;`` if it beats ``,``, else ``,``."""
    first = text.split("\n", 1)[0]
    if "\t" in first:
        return "\t"
    return ";" if first.count(";") > first.count(",") else ","


def _block(sheet: Sheet, values: list[str], known: tuple[int, ...], target: int, answer: str | None) -> str:
    lines = [f"{sheet.label(c)}: {values[c].strip()}" for c in known]
    tail = f" {answer.strip()}\n\n" if answer is not None else ""
    lines.append(f"{sheet.label(target)}:{tail}")
    return "\n".join(lines)


def cell_prompt(sheet: Sheet, row: int, column: int, example_rows: list[int],
                known: tuple[int, ...] | None = None) -> CellPrompt:
    """The prompt for cell (row, column) with ``example_rows`` as shots; ``known`` defaults to the row's
    non-empty cells other than the target."""
    values = sheet.rows[row]
    if known is None:
        known = tuple(c for c, v in enumerate(values) if c != column and v.strip())
    examples = tuple(_block(sheet, sheet.rows[r], known, column, sheet.rows[r][column]) for r in example_rows)
    return CellPrompt(row, column, examples, _block(sheet, values, known, column, None))


def fill_prompts(sheet: Sheet, targets: list[tuple[int, int]] | None = None,
                 max_examples: int = DEFAULT_MAX_EXAMPLES) -> list[CellPrompt]:
    """Prompts for ``targets`` (default: every empty cell) in rows with something known, in reading order.

    Example rows are the complete rows (every cell filled) that hold no target, the first ``max_examples`` of
    them: the same rows for every cell, so cells of one column share their prompt prefix. Raises KnownError
    when no row is complete or a target row has nothing known to go on.
    """
    targets = sorted(targets if targets is not None else sheet.empty_cells())
    # A blank row has nothing to go on; filling it would only invent a row.
    targets = [(r, c) for r, c in targets if any(v.strip() for v in sheet.rows[r])]
    if not targets:
        return []
    target_rows = {r for r, _ in targets}
    examples = [r for r in range(len(sheet.rows)) if r not in target_rows and sheet.is_complete(r)]
    if not examples:
        raise KnownError("No complete row to learn from: fill every cell of at least one row first")
    examples = examples[:max_examples]
    return [cell_prompt(sheet, r, c, examples) for r, c in targets]


