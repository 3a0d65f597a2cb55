"""timm's ``summary.csv``: one row per validated epoch (timm-formats.md §8).

What timm writes, and what this parser does about it:

- The header names the era: ``eval_prec1/5`` (v0.1), ``eval_top1/5`` (v0.2-v0.6), ``+ lr`` (v0.8.2+),
  ``epoch,train_loss,lr`` (v0.9.16+ without a validation split). ``eval_prec1/5`` are renamed to
  ``eval_top1/5``; any other column keeps its own name.
- Forks add columns. A list-valued cell such as ``train_lr`` = ``"[1e-06, 1e-06]"`` (one LR per
  parameter group) becomes the mean of the list, which is what timm's own ``lr`` column holds; a
  ``train_lr`` column is named ``lr`` when the file has no ``lr`` column.
- A run resumed into the same folder appends a second header and may repeat epochs. A repeated
  header or an epoch that goes back is a ``resume`` event; the *latest* row of each epoch is kept,
  because it is the one the resumed run's checkpoints and schedule continued from.
- Rows are written with CRLF endings. Each physical line is parsed on its own (timm never writes a
  field that spans lines), so one stray quote cannot swallow the rest of the file.

Bad input never raises anything but :class:`IngestError`, and only when nothing usable is left
(no header, an unreadable or binary file). Bad rows after a good header become ``IngestIssue`` s
naming the line, and every good row around them is kept.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Iterator, Mapping, NamedTuple

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.ingest.contribution import Contribution, EpochColumns, EpochValues
from mnv4_postmortem.analyzer.ingest.decode import head_text, utf8_stream
from mnv4_postmortem.analyzer.ingest.files import open_input
from mnv4_postmortem.analyzer.model import (
    EPOCH_COLUMNS,
    Event,
    IngestError,
    IngestIssue,
    SourceInfo,
    SourceKind,
    SourceRef,
)

__all__ = ["SummaryCsv", "parse_summary_csv", "sniff_summary_csv"]

# A real row is < 300 bytes; anything longer than this is not a summary row. Reading with a cap
# keeps a binary file without newlines (or a hostile multi-GB line) from being read into memory.
MAX_LINE_BYTES = 64 * 1024
# Hostile files can have millions of bad lines; list the first ones and count the rest.
MAX_LISTED_ISSUES = 20
# Epoch numbers beyond this are junk (and would overflow an int64 index).
MAX_EPOCH = 10**9
# Distinct epochs kept; bounds memory on hostile input (a month of one-minute epochs is 43,200).
MAX_EPOCH_ROWS = 1_000_000

# Old timm column names -> the canonical ones (timm-formats.md §8).
_RENAMES = {"eval_prec1": "eval_top1", "eval_prec5": "eval_top5"}
# A fork's per-parameter-group LR column; stands in for ``lr`` when the file has none.
_LR_ALIASES = ("train_lr",)
_CANONICAL = frozenset(EPOCH_COLUMNS)
_LIST_CELL = re.compile(r"^\[(.*)\]$", re.DOTALL)
_UTF8_BOM = "\ufeff"

# Known column sets, in the order timm wrote them, and the family name each gives.
_FAMILIES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("epoch", "train_loss", "eval_loss", "eval_prec1", "eval_prec5"), "v0.1 (eval_prec1/5)"),
    (("epoch", "train_loss", "eval_loss", "eval_top1", "eval_top5"), "v0.2-v0.6"),
    (("epoch", "train_loss", "eval_loss", "eval_top1", "eval_top5", "lr"), "v0.8.2+ (with lr)"),
    (("epoch", "train_loss", "lr"), "v0.9.16+ no eval"),
)


@dataclass(frozen=True, slots=True, eq=False)
class SummaryCsv:
    """A parsed summary.csv.

    ``frame``: index ``epoch`` (int); canonical float columns first (``train_loss``, ``eval_loss``,
    ``eval_top1``, ``eval_top5``, ``lr`` where present), then extra columns under their own names
    (float when every cell parses as a number or a list of numbers, else strings). One row per epoch:
    the latest row written for it. ``lines``: epoch -> 1-based line number of that row.
    """

    path: str
    frame: pd.DataFrame
    lines: pd.Series
    header: tuple[str, ...]
    family: str
    events: tuple[Event, ...]
    issues: tuple[IngestIssue, ...]


def sniff_summary_csv(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) starts with a summary.csv header.

    Content-based: the first line is CSV whose first cell is ``epoch`` and which has a
    ``train_loss`` column, whatever the file is called.
    """
    # decoded as the parser will read it (BOM, UTF-16, a Latin-1 byte): see decode.py
    text = head_text(head).split("\n", 1)[0].lstrip(_UTF8_BOM).strip()
    if "\x00" in text:
        return False
    try:
        cells = next(csv.reader((text,)), [])
    except csv.Error:
        return False
    names = [cell.strip() for cell in cells]
    return bool(names) and names[0] == "epoch" and "train_loss" in names


# timm's columns for rows pasted without their header: 5 numbers before v0.8.2, 6 (with lr) since.
HEADERLESS_COLUMNS: Mapping[int, tuple[str, ...]] = {
    5: ("epoch", "train_loss", "eval_loss", "eval_top1", "eval_top5"),
    6: ("epoch", "train_loss", "eval_loss", "eval_top1", "eval_top5", "lr"),
}


def headerless_columns(text: str) -> tuple[str, ...] | None:
    """timm's column names when ``text`` is a summary row without a header: 5 or 6 comma-separated
    numbers, the first a whole epoch number; None for anything else."""
    cells = [cell.strip() for cell in text.strip().split(",")]
    columns = HEADERLESS_COLUMNS.get(len(cells))
    if columns is None or _parse_epoch(cells[0]) is None:
        return None
    if any(_parse_number(cell) is None for cell in cells[1:]):
        return None
    return columns


def sniff_headerless_summary(head: bytes) -> bool:
    """True when every complete non-blank line of ``head`` is a headerless summary row (and there is one)."""
    text = head_text(head)
    lines = text.split("\n")
    if len(head) >= 64 * 1024:
        lines = lines[:-1]   # the last one may be cut
    rows = [line for line in lines if line.strip()]
    return bool(rows) and all(headerless_columns(line) is not None for line in rows)


def parse_summary_csv(path: Path, display_path: str | None = None, *, fast: bool = True) -> SummaryCsv:
    """Parse a timm summary.csv. Raises :class:`IngestError` only when nothing usable is in it.

    ``fast=False`` reads every line with the per-line reference parser (same result; see
    :class:`_NumericRun` for the bulk path, which tests hold to it)."""
    path = Path(path)
    shown = display_path if display_path is not None else str(path)
    with open_input(path, shown) as handle:
        # any encoding in, UTF-8 out, reported; a header line with a non-UTF-8 byte is read as Latin-1
        decoded = utf8_stream(handle, shown, MAX_LINE_BYTES + 1, fallback_if=_is_header_text)
        parsed = _Parser(shown).run(decoded.stream, fast)
    return replace(parsed, issues=(*decoded.issues(), *parsed.issues)) if decoded.issues() else parsed


def _is_header_text(text: str) -> bool:
    return text.lstrip(_UTF8_BOM).split(",", 1)[0].strip() == "epoch"


def parse_summary_stream(stream: BinaryIO, shown: str) -> SummaryCsv:
    """Parse summary rows from a binary stream (an excerpt held in memory)."""
    return _Parser(shown).run(stream)


# --------------------------------------------------------------------------------------------
# Reading lines


@dataclass(slots=True)
class _Line:
    number: int        # 1-based physical line
    offset: int        # byte offset of the line's start
    text: str | None   # decoded, without the line terminator; None when the line was unreadable
    problem: str = ""  # why ``text`` is None
    terminated: bool = True


def _read_lines(handle: BinaryIO, number: int = 0, offset: int = 0) -> Iterator[_Line]:
    """Physical lines, decoded one by one so a bad byte costs one line, not the file (``number`` lines
    of ``offset`` bytes were read before)."""
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        start = offset
        offset += len(raw)
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            offset += _skip_rest_of_line(handle)
            yield _Line(number, start, None, f"line longer than {MAX_LINE_BYTES} bytes")
            continue
        yield _decode_line(raw, number, start)


def _skip_rest_of_line(handle: BinaryIO) -> int:
    skipped = 0
    while True:
        chunk = handle.readline(1024 * 1024)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def _decode_line(raw: bytes, number: int, offset: int) -> _Line:
    terminated = raw.endswith(b"\n")
    nul = raw.find(b"\x00")
    if nul >= 0:
        return _Line(number, offset, None, f"binary content (NUL byte at byte {offset + nul})", terminated)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _Line(number, offset, None, f"invalid UTF-8 at byte {offset + exc.start}", terminated)
    return _Line(number, offset, text.rstrip("\r\n"), terminated=terminated)


def _split_csv(text: str) -> list[str]:
    """One line's cells. Raises csv.Error (e.g. a field over csv.field_size_limit())."""
    return [cell.strip() for cell in next(csv.reader((text,)), [])]



# --------------------------------------------------------------------------------------------
# The bulk path: runs of plain numeric rows read with pandas' C parser
#
# Almost every line of a real summary.csv is a row of plain numbers. Such lines are found in a block
# with a few numpy passes over its bytes, and a run of consecutive ones with the same number of cells
# is read at once by ``pandas.read_csv``, whose C number parser gives the same doubles as ``float()``
# (tests hold the two paths to each other). Every other line (a header, a blank or bad line, a cell
# with letters, spaces or quotes, ``nan``/``inf``) goes to the per-line parser, which stays the reference.

_BLOCK_BYTES = 1 << 20       # bytes per block: the working set stays a few MB
_NUMERIC_BYTES = np.zeros(256, bool)
_NUMERIC_BYTES[list(b"0123456789,.-+eE\r\n")] = True
_DIGIT_BYTES = np.zeros(256, bool)
_DIGIT_BYTES[list(b"0123456789")] = True
_MAX_BULK_EPOCH_DIGITS = 9      # an epoch cell of at most 9 digits is always <= MAX_EPOCH


@dataclass(frozen=True, slots=True)
class _NumericRun:
    """Consecutive lines of plain numbers: ``data`` (each line ends in \\n)."""

    data: bytes
    first_line: int     # 1-based number of its first line
    offset: int         # byte offset of its first line
    count: int

    def has_cells(self, cells: int) -> bool:
        """Whether the run holds ``cells`` cells per line on average: with pandas refusing any line with
        more cells than named, that means every line has exactly ``cells``."""
        return self.data.count(b",") == self.count * (cells - 1)

    def lines(self) -> Iterator[_Line]:
        """The run as single lines (for the per-line parser)."""
        offset = self.offset
        for k, raw in enumerate(self.data.splitlines(keepends=True)):
            yield _decode_line(raw, self.first_line + k, offset)
            offset += len(raw)


def _scan(handle: BinaryIO) -> Iterator[_Line | _NumericRun]:
    """The file as single lines and runs of numeric lines, in order. Up to the first non-blank line
    (the header) everything is a single line; a line over MAX_LINE_BYTES sends the rest of the file
    to the per-line reader, which reports it."""
    number, offset, carry, header_done = 0, 0, b"", False
    while chunk := handle.read(_BLOCK_BYTES):
        data = carry + chunk if carry else chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) <= MAX_LINE_BYTES:
            carry = data
            continue
        block, carry = data[:cut], data[cut:]
        lengths = np.diff(np.flatnonzero(np.frombuffer(block, np.uint8) == 10), prepend=-1)
        if cut == 0 or len(carry) > MAX_LINE_BYTES or (len(lengths) and lengths.max() > MAX_LINE_BYTES):
            yield from _read_lines(_Joined(data, handle), number, offset)
            return
        for item in _classify(block, number, offset, header_done):
            header_done = header_done or not isinstance(item, _Line) or bool(item.text and item.text.strip())
            yield item
        number += len(lengths)
        offset += len(block)
    if carry:
        yield from _read_lines(io.BytesIO(carry), number, offset)


class _Joined(io.RawIOBase):
    """``head`` and then the rest of ``tail``, as one binary stream."""

    def __init__(self, head: bytes, tail: BinaryIO):
        self._head, self._tail = io.BytesIO(head), tail

    def readable(self) -> bool:
        return True

    def readline(self, size: int = -1) -> bytes:  # type: ignore[override]
        line = self._head.readline(size)
        if line.endswith(b"\n") or (size >= 0 and len(line) >= size):
            return line
        return line + self._tail.readline(size - len(line) if size >= 0 else -1)


def _classify(block: bytes, number: int, offset: int, header_done: bool) -> Iterator[_Line | _NumericRun]:
    """Cut a block of whole lines into single lines and runs of plain numeric lines. A line is plain
    when it holds only digits, ``,.-+eE`` and a CRLF or LF ending, and its first cell (the epoch) is
    1-9 digits followed by a comma. (That every line of a run has the header's cell count is checked
    per run, in :meth:`_Parser.read_run`.)"""
    codes = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(codes == 10)
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    simple = np.ones(len(ends), bool)
    odd = np.flatnonzero(~_NUMERIC_BYTES[codes])                               # bytes outside the numeric set
    if len(odd):
        simple[np.searchsorted(ends, odd)] = False
    crlf = (ends > starts) & (codes[np.maximum(ends - 1, 0)] == 13)
    content_end = ends - crlf
    if block.count(b"\r") != int(crlf.sum()):                                 # a CR not ending its line
        carriage = np.flatnonzero(codes == 13)
        stray = carriage[codes[carriage + 1] != 10]
        simple[np.searchsorted(ends, stray)] = False
    # the epoch cell: digits up to the first comma, at position 1..9
    comma_at = np.full(len(ends), -1)
    digits_so_far = np.ones(len(ends), bool)
    for k in range(_MAX_BULK_EPOCH_DIGITS + 1):
        byte = codes[np.minimum(starts + k, len(codes) - 1)]
        inside = starts + k < content_end
        found = digits_so_far & inside & (byte == 44) & (comma_at < 0) & (k >= 1)
        comma_at[found] = k
        digits_so_far &= inside & _DIGIT_BYTES[byte]
    simple &= comma_at > 0
    if not header_done:   # the header (and blank lines before it) are read one by one
        nonblank = np.flatnonzero(content_end > starts)
        simple[:(nonblank[0] + 1) if len(nonblank) else len(simple)] = False
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(simple.view(np.int8))) + 1, [len(simple)]))
    for begin, end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        if simple[begin] and end - begin >= 2:
            first, last = int(starts[begin]), int(ends[end - 1]) + 1
            yield _NumericRun(block[first:last], number + begin + 1, offset + first, end - begin)
            continue
        for row in range(begin, end):
            first = int(starts[row])
            yield _decode_line(block[first:int(ends[row]) + 1], number + row + 1, offset + first)


def _read_numeric(run: _NumericRun, cells: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(epochs, values [row, cell 1..]) of a run, or None when a line has more than ``cells`` cells or a
    cell is not a number float() reads."""
    try:
        frame = pd.read_csv(io.BytesIO(run.data), header=None, names=list(range(cells)), engine="c",
                            dtype={k: (np.int64 if k == 0 else np.float64) for k in range(cells)},
                            skip_blank_lines=False, quoting=csv.QUOTE_NONE)
    except (ValueError, OverflowError, pd.errors.ParserError):
        return None
    if len(frame) != run.count:
        return None
    values = frame.iloc[:, 1:].to_numpy(dtype=np.float64) if cells > 1 else np.empty((run.count, 0))
    return frame[0].to_numpy(dtype=np.int64), values


class _Seen:
    """The epochs that have a row: those read one by one in a set, those read in bulk as the rising
    arrays they came in (a million epochs in a set would take some 60 MB)."""

    def __init__(self) -> None:
        self.single: set[int] = set()
        self.rising: list[np.ndarray] = []
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def __contains__(self, epoch: int) -> bool:
        return epoch in self.single or any(_in_rising(array, np.array([epoch]))[0] for array in self.rising)

    def add(self, epoch: int) -> None:
        if epoch not in self:
            self.count += 1
            self.single.add(epoch)

    def present(self, epochs: np.ndarray) -> np.ndarray:
        found = np.isin(epochs, np.fromiter(self.single, np.int64, len(self.single))) if self.single else np.zeros(len(epochs), bool)
        for array in self.rising:
            found |= _in_rising(array, epochs)
        return found

    def add_rising(self, epochs: np.ndarray, after: int | None) -> list[int]:
        """Add epochs that rise strictly; returns those that were there already (none when they all
        come after ``after``, the highest epoch so far)."""
        present = (np.zeros(len(epochs), bool) if after is not None and int(epochs[0]) > after
                   else self.present(epochs))
        self.count += int(len(epochs) - present.sum())
        self.rising.append(epochs)
        return epochs[present].tolist()


def _in_rising(array: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    at = np.minimum(np.searchsorted(array, epochs), len(array) - 1)
    return array[at] == epochs if len(array) else np.zeros(len(epochs), bool)


@dataclass(frozen=True, slots=True)
class _RowBlock:
    """Rows read in bulk: one layout, ``values[field][row]`` in ``layout.fields`` order."""

    epochs: np.ndarray
    lines: np.ndarray
    layout: _Layout
    values: list[np.ndarray]
    nonfinite: list[np.ndarray]     # written as a number out of range (inf); a NaN here is an empty cell

# --------------------------------------------------------------------------------------------
# Cells


def _parse_number(cell: str) -> float | None:
    """A float for a number, ``nan``/``inf`` or a list of numbers (its mean); None otherwise."""
    if cell == "":
        return math.nan
    try:
        return float(cell)
    except ValueError:
        pass
    match = _LIST_CELL.match(cell)
    if match is None:
        return None
    parts = [part.strip() for part in match.group(1).split(",") if part.strip()]
    if not parts:
        return math.nan
    try:
        values = [float(part) for part in parts]
    except ValueError:
        return None
    return math.fsum(values) / len(values)


def _parse_epoch(cell: str) -> int | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    if not math.isfinite(value) or not value.is_integer() or not 0 <= value <= MAX_EPOCH:
        return None
    return int(value)


# --------------------------------------------------------------------------------------------
# The parser


@dataclass(slots=True)
class _Restart:
    """A point where the file starts over: a repeated header, or an epoch that goes back."""

    line: int
    header: bool
    first_epoch: int | None = None
    last_before: int | None = None   # the highest epoch written before this point
    replaced: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Layout:
    """What the positions of one header line become."""

    width: int                                  # cells per row
    fields: tuple[tuple[int, str, bool], ...]   # (position, output name, canonical?) of kept columns
    slot: Mapping[str, int]                     # output name -> index into a row's values
    has_extras: bool                            # any non-canonical (fork) column


class _Row(NamedTuple):
    """One kept row, stored compactly: a file can hold many thousands of them."""

    line: int
    layout: _Layout
    values: tuple[float | str, ...]  # canonical columns as floats, extra columns as written
    nonfinite: int                   # bit i: field i was written as nan/inf (not merely missing)


class _Parser:
    def __init__(self, shown: str):
        self.shown = shown
        self.header: tuple[str, ...] = ()
        self.layout = _Layout(0, (), {}, False)      # of the current header
        self.column_order: list[str] = []            # output names in first-seen order
        self.lr_alias: str | None = None             # the fork column that stands in for ``lr``
        self.rows: dict[int, _Row] = {}               # rows read one by one: the latest of each epoch
        self.blocks: list[_RowBlock] = []             # rows read in bulk
        self.seen = _Seen()                           # every epoch with a row, either way
        self.restarts: list[_Restart] = []
        self.pending_header: _Restart | None = None  # a repeated header still waiting for its first row
        self.prev_epoch: int | None = None
        self.max_epoch: int | None = None
        self.issues: list[IngestIssue] = []
        self.problems = 0
        self.first_problem: IngestIssue | None = None
        self.rejected_lines = 0
        self.rejected_last_line = False
        self.events: list[Event] = []
        self.headerless = False

    def ref(self, line: int | None = None, offset: int | None = None) -> SourceRef:
        return SourceRef(self.shown, line=line, offset=offset)

    def run(self, handle: BinaryIO, fast: bool = True) -> SummaryCsv:
        items: Iterator[_Line | _NumericRun] = _scan(handle) if fast else _read_lines(handle)
        self.read_header(items)  # type: ignore[arg-type]   # the scan gives single lines up to the header
        last: _Line | None = None
        for item in items:
            lines = [item] if isinstance(item, _Line) else () if self.read_run(item) else item.lines()
            for line in lines:
                self.rejected_last_line = False
                self.read_line(line)
                last = line
            if not isinstance(item, _Line) and not lines:
                self.rejected_last_line = False
                last = _Line(item.first_line + item.count - 1, 0, "")
        self.finish(last)
        return self.result()

    def read_run(self, run: _NumericRun) -> bool:
        """Rows of plain numbers in bulk, as :meth:`data_row` would read them one by one; False (nothing
        done) when the run does not fit the current header or a cell is not a number."""
        layout = self.layout
        if layout.width < 2 or layout.has_extras or not run.has_cells(layout.width):
            return False
        read = _read_numeric(run, layout.width)
        if read is None:
            return False
        epochs, cells = read
        if len(self.seen) + len(epochs) > MAX_EPOCH_ROWS:
            distinct = np.unique(epochs)
            if len(self.seen) + int((~self.seen.present(distinct)).sum()) > MAX_EPOCH_ROWS:
                return False    # past the cap: row by row, where data_row rejects the new epochs
        values = [cells[:, position - 1].copy() for position, _name, _canonical in layout.fields]   # own memory: freed one by one later
        lines = np.arange(run.first_line, run.first_line + run.count, dtype=np.int64)
        # pieces in which epochs rise strictly: a restart can only come at a piece's first row
        cuts = np.concatenate(([0], np.flatnonzero(np.diff(epochs) <= 0) + 1, [len(epochs)]))
        for begin, end in zip(cuts[:-1].tolist(), cuts[1:].tolist()):
            self.rows_in_order(epochs[begin:end], lines[begin:end], layout, [column[begin:end] for column in values])
        return True

    def rows_in_order(self, epochs: np.ndarray, lines: np.ndarray, layout: _Layout, values: list[np.ndarray]) -> None:
        """Rows whose epochs rise strictly: :meth:`note_epoch_order` and the row store, for all at once."""
        self.note_epoch_order(int(epochs[0]), int(lines[0]))     # a restart, if any, is here
        if len(epochs) > 1:
            rest = epochs[1:]
            replaced = self.seen.add_rising(rest, after=self.max_epoch)
            if replaced:
                self.restarts[-1].replaced.extend(replaced)   # a repeat implies an earlier restart
            self.prev_epoch = int(rest[-1])
            self.max_epoch = max(self.max_epoch if self.max_epoch is not None else -1, int(rest[-1]))
        self.blocks.append(_RowBlock(epochs, lines, layout, values, [np.isinf(column) for column in values]))

    # -- header ---------------------------------------------------------------------------

    def read_header(self, lines: Iterator[_Line]) -> None:
        for line in lines:
            if line.text is None:
                raise IngestError(f"not a summary.csv: {line.problem}", self.ref(line.number, line.offset))
            text = line.text.lstrip(_UTF8_BOM) if line.number == 1 else line.text
            if not text.strip():
                continue
            cells = _header_cells(text)
            if cells is None and headerless_columns(text) is not None:
                self.implicit_header(headerless_columns(text), line)
                return
            if cells is None:
                shown = text if len(text) <= 80 else text[:77] + "..."
                raise IngestError(
                    f"not a summary.csv: line {line.number} is not a header starting with 'epoch': {shown!r}",
                    self.ref(line.number),
                )
            self.header = tuple(cells)
            self.set_columns(cells, line.number)
            return
        raise IngestError("empty file: no summary.csv header", self.ref())

    def implicit_header(self, cells: tuple[str, ...], line: _Line) -> None:
        """A summary excerpt without its header line (pasted rows): timm's column order, said so."""
        self.header = cells
        self.headerless = True
        self.set_columns(list(cells), line.number)
        self.issues.append(IngestIssue(self.ref(line.number), (
            f"no header line: rows of {len(cells)} numbers read in timm's summary.csv column order "
            f"({', '.join(cells)})")))
        self.data_row(_split_csv(line.text or ""), line)

    def set_columns(self, cells: list[str], line: int) -> None:
        """Make the layout rows under this header are read with (which position goes to which column)."""
        lr_alias = self.pick_lr_alias(cells)
        fields: list[tuple[int, str, bool]] = []
        slot: dict[str, int] = {}
        for position, cell in enumerate(cells[1:], start=1):  # position 0 is the epoch: the index
            name = "lr" if cell == lr_alias else _canonical_name(cell, cells)
            if not name or name == "epoch" or name in slot:
                what = "no name" if not name else f"the name {name!r} twice"
                self.problem(line, f"header column {position + 1} has {what}; its values are ignored")
                continue
            slot[name] = len(fields)
            fields.append((position, name, name in _CANONICAL))
            if name not in self.column_order:
                self.column_order.append(name)
        has_extras = any(not canonical for _position, _name, canonical in fields)
        self.layout = _Layout(len(cells), tuple(fields), slot, has_extras)

    def pick_lr_alias(self, cells: list[str]) -> str | None:
        """``train_lr`` becomes ``lr`` unless the file has a real ``lr`` column."""
        if "lr" in cells or ("lr" in self.column_order and self.lr_alias is None):
            return None
        for alias in _LR_ALIASES:
            if alias in cells:
                self.lr_alias = alias
                return alias
        return None

    # -- lines ----------------------------------------------------------------------------

    def read_line(self, line: _Line) -> None:
        if line.text is None:
            self.reject(line, line.problem, line.offset)
            return
        if not line.text.strip():
            return
        try:
            cells = _split_csv(line.text)
        except csv.Error as exc:
            self.reject(line, f"not a CSV row ({exc})")
            return
        if cells and cells[0] == "epoch":
            self.repeated_header(cells, line.number)
        else:
            self.data_row(cells, line)

    def repeated_header(self, cells: list[str], line: int) -> None:
        if tuple(cells) != self.header:
            self.problem(line, f"header changes at line {line}: {','.join(cells)} (line 1: {','.join(self.header)})")
        self.set_columns(cells, line)
        self.pending_header = _Restart(line=line, header=True, last_before=self.max_epoch)
        self.restarts.append(self.pending_header)

    def data_row(self, cells: list[str], line: _Line) -> None:
        layout = self.layout
        if len(cells) != layout.width:
            self.reject(line, f"{len(cells)} field(s), expected {layout.width}")
            return
        epoch = _parse_epoch(cells[0])
        if epoch is None:
            self.reject(line, f"epoch {cells[0][:40]!r} is not a whole number in 0..{MAX_EPOCH}")
            return
        if epoch not in self.seen and len(self.seen) >= MAX_EPOCH_ROWS:
            self.reject(line, f"more than {MAX_EPOCH_ROWS} epochs; later new epochs are ignored")
            return
        values: list[float | str] = []
        nonfinite = 0
        for bit, (position, name, canonical) in enumerate(layout.fields):
            cell = cells[position]
            if not canonical:
                values.append(cell)  # typed per column once every row is in
                continue
            number = _parse_number(cell)
            if number is None:
                self.problem(line.number, f"line {line.number}: {name} {cell[:40]!r} is not a number; read as NaN")
                number = math.nan
            elif cell and not math.isfinite(number):
                nonfinite |= 1 << bit
            values.append(number)
        self.note_epoch_order(epoch, line.number)
        self.rows.pop(epoch, None)  # re-insert: the latest row of an epoch wins
        self.rows[epoch] = _Row(line.number, layout, tuple(values), nonfinite)

    def note_epoch_order(self, epoch: int, line: int) -> None:
        """An epoch at or below the previous row's starts a restart (unless a header already did)."""
        if self.pending_header is not None:
            self.pending_header.first_epoch = epoch
            self.pending_header = None
        elif self.prev_epoch is not None and epoch <= self.prev_epoch:
            self.restarts.append(_Restart(line=line, header=False, first_epoch=epoch, last_before=self.max_epoch))
        if epoch in self.seen:
            self.restarts[-1].replaced.append(epoch)  # a repeat implies an earlier restart
        self.seen.add(epoch)
        self.prev_epoch = epoch
        self.max_epoch = epoch if self.max_epoch is None else max(self.max_epoch, epoch)

    # -- issues ---------------------------------------------------------------------------

    def problem(self, line: int | None, message: str, offset: int | None = None) -> None:
        issue = IngestIssue(self.ref(line, offset), message)
        self.first_problem = self.first_problem or issue
        self.problems += 1
        if self.problems <= MAX_LISTED_ISSUES:
            self.issues.append(issue)

    def reject(self, line: _Line, why: str, offset: int | None = None) -> None:
        ending = "" if line.terminated else " (the file ends here without a newline: an interrupted write?)"
        self.problem(line.number, f"line {line.number} skipped: {why}{ending}", offset)
        self.rejected_lines += 1
        self.rejected_last_line = True

    def finish(self, last: _Line | None) -> None:
        if last is not None and not last.terminated and self.rejected_last_line:
            self.events.append(Event("truncated", "summary.csv ends in an incomplete line", self.ref(last.number)))
        if self.problems > MAX_LISTED_ISSUES:
            hidden = self.problems - MAX_LISTED_ISSUES
            self.issues.append(IngestIssue(self.ref(), f"{hidden} more problem(s) like the ones above, not listed"))

    # -- result ---------------------------------------------------------------------------

    def result(self) -> SummaryCsv:
        if not self.seen and self.rejected_lines and self.first_problem is not None:
            raise IngestError(f"no usable rows; first problem: {self.first_problem.message}", self.first_problem.source)
        if not self.seen:
            self.issues.append(IngestIssue(self.ref(), "header only: no epoch rows"))
        if self.blocks:
            frame, lines, first = self.build_from_blocks()
        else:
            frame, lines = self.build_frame()
            first = self.first_nonfinite(frame)
        events = self.restart_events() + self.events + self.nonfinite_events(frame, first, lines)
        events.sort(key=lambda event: event.source.line or 0)
        return SummaryCsv(
            path=self.shown,
            frame=frame,
            lines=lines,
            header=self.header,
            family=_family(self.header),
            events=tuple(events),
            issues=tuple(self.issues),
        )

    def build_frame(self) -> tuple[pd.DataFrame, pd.Series]:
        epochs = sorted(self.rows)
        index = pd.Index(epochs, dtype="int64", name="epoch")
        rows = [self.rows[epoch] for epoch in epochs]
        data: dict[str, pd.Series] = {}
        for name in EPOCH_COLUMNS:
            if name in self.column_order:
                data[name] = pd.Series(_cells(rows, name, math.nan), index=index, dtype="float64")
        for name in self.column_order:
            if name not in _CANONICAL:
                data[name] = _extra_column(_cells(rows, name, None), index)
        frame = pd.DataFrame(data, index=index)
        lines = pd.Series([row.line for row in rows], index=index, dtype="int64", name="line")
        return frame, lines

    def build_from_blocks(self) -> tuple[pd.DataFrame, pd.Series, dict[str, int]]:
        """:meth:`build_frame` and :meth:`first_nonfinite` when rows were also read in bulk: the latest
        row of each epoch (the highest line) among the single rows and the blocks, as arrays."""
        if not self.rows and all(block.layout is self.blocks[0].layout for block in self.blocks):
            together = np.concatenate([block.epochs for block in self.blocks])
            if len(together) < 2 or (np.diff(together) > 0).all():    # no epoch twice: every row is kept
                return self.build_from_one_layout(together)
        single = list(self.rows.values())
        sources = [(np.array(list(self.rows), np.int64), np.array([row.line for row in single], np.int64))]
        sources += [(block.epochs, block.lines) for block in self.blocks]
        all_epochs = np.concatenate([epochs for epochs, _ in sources])
        all_lines = np.concatenate([lines for _, lines in sources])
        source = np.concatenate([np.full(len(epochs), k - 1, np.int64) for k, (epochs, _) in enumerate(sources)])
        position = np.concatenate([np.arange(len(epochs)) for epochs, _ in sources])
        order = np.lexsort((all_lines, all_epochs))
        last = np.ones(len(order), bool)
        last[:-1] = all_epochs[order][1:] != all_epochs[order][:-1]
        kept = order[last]                                    # one row per epoch, epochs ascending
        epochs, lines, kept_source, kept_position = all_epochs[kept], all_lines[kept], source[kept], position[kept]
        index = pd.Index(epochs, dtype="int64", name="epoch")
        from_single = np.flatnonzero(kept_source == -1)
        single_rows = [single[k] for k in kept_position[from_single].tolist()]
        data: dict[str, pd.Series] = {}
        first: dict[str, int] = {}
        for name in [n for n in EPOCH_COLUMNS if n in self.column_order]:
            column = np.full(len(kept), np.nan)
            written = np.zeros(len(kept), bool)     # written as nan/inf
            for k, block in enumerate(self.blocks):
                if name in block.layout.slot:
                    rows = np.flatnonzero(kept_source == k)
                    column[rows] = block.values[block.layout.slot[name]][kept_position[rows]]
                    written[rows] = block.nonfinite[block.layout.slot[name]][kept_position[rows]]
            for row, single_row in zip(from_single.tolist(), single_rows):
                slot = single_row.layout.slot.get(name)
                if slot is not None:
                    column[row] = single_row.values[slot]
                    written[row] = bool(single_row.nonfinite >> slot & 1)
            data[name] = pd.Series(column, index=index, dtype="float64")
            if written.any():
                first[name] = int(epochs[int(np.argmax(written))])
        for name in [n for n in self.column_order if n not in _CANONICAL]:
            cells: list = [None] * len(kept)
            for row, single_row in zip(from_single.tolist(), single_rows):
                slot = single_row.layout.slot.get(name)
                if slot is not None:
                    cells[row] = single_row.values[slot]
                    if name not in first and _is_written_nonfinite(cells[row]):
                        first[name] = int(epochs[row])
            data[name] = _extra_column(cells, index)
        frame = pd.DataFrame(data, index=index)
        return frame, pd.Series(lines, index=index, dtype="int64", name="line"), first

    def build_from_one_layout(self, epochs: np.ndarray) -> tuple[pd.DataFrame, pd.Series, dict[str, int]]:
        """:meth:`build_from_blocks` when every row came in bulk under one header and no epoch repeats.
        The float columns are joined straight into one 2-d array, which becomes the frame's storage
        as it is (a frame built from separate columns would copy them once more)."""
        layout = self.blocks[0].layout
        index = pd.Index(epochs, dtype="int64", name="epoch")
        names = [n for n in EPOCH_COLUMNS if n in self.column_order]
        table = np.empty((len(names), len(epochs)))
        first = {}
        for row, name in enumerate(names):
            slot = layout.slot.get(name)
            if slot is None:
                table[row] = np.nan
                continue
            np.concatenate([block.values[slot] for block in self.blocks], out=table[row])
            written = np.concatenate([block.nonfinite[slot] for block in self.blocks])
            for block in self.blocks:   # the last use of the blocks: free each column once it is joined
                block.values[slot] = block.nonfinite[slot] = np.empty(0)
            if written.any():
                first[name] = int(epochs[int(np.argmax(written))])
        frame = pd.DataFrame(table.T, index=index, columns=names, copy=False)
        for name in [n for n in self.column_order if n not in _CANONICAL]:
            frame[name] = _extra_column([None] * len(epochs), index)
        lines = np.concatenate([block.lines for block in self.blocks])
        return frame, pd.Series(lines, index=index, dtype="int64", name="line"), first

    def nonfinite_events(self, frame: pd.DataFrame, first: dict[str, int], lines: pd.Series) -> list[Event]:
        """An event for the first nan/inf written in each column (among the kept rows)."""
        events = []
        for name in frame.columns:
            if name in first:
                epoch = first[name]
                value = frame.at[epoch, name]
                events.append(
                    Event(
                        "nonfinite",
                        f"{name} is {value} at epoch {epoch}",
                        self.ref(int(lines[epoch])),
                        epoch,
                        {"column": name, "value": str(value)},
                    )
                )
        return events

    def first_nonfinite(self, frame: pd.DataFrame) -> dict[str, int]:
        """The epoch of the first nan/inf written in each column (among the kept rows)."""
        first: dict[str, int] = {}
        for epoch in frame.index:
            row = self.rows[epoch]
            if not row.nonfinite and not row.layout.has_extras:
                continue
            for bit, (_position, name, canonical) in enumerate(row.layout.fields):
                cell = row.values[bit]
                written_nonfinite = row.nonfinite >> bit & 1 if canonical else _is_written_nonfinite(cell)
                if written_nonfinite:
                    first.setdefault(name, epoch)
        return first

    def restart_events(self) -> list[Event]:
        return [self.restart_event(restart) for restart in self.restarts]

    def restart_event(self, restart: _Restart) -> Event:
        if restart.header:
            message = f"header repeated at line {restart.line}: the run was restarted into the same folder"
        else:
            message = (
                f"epoch {restart.first_epoch} at line {restart.line} follows epoch {restart.last_before}: "
                "the run was restarted from an earlier checkpoint"
            )
        if restart.replaced:
            message += f"; the later rows replace epoch(s) {_span(restart.replaced)}"
        data = {
            "header": restart.header,
            "first_epoch": restart.first_epoch,
            "last_epoch_before": restart.last_before,
            "replaced_epochs": tuple(restart.replaced),
        }
        return Event("resume", message, self.ref(restart.line), restart.first_epoch, data)


def _header_cells(text: str) -> list[str] | None:
    try:
        cells = _split_csv(text)
    except csv.Error:
        return None
    return cells if cells and cells[0] == "epoch" else None


def _canonical_name(cell: str, header: list[str]) -> str:
    """``eval_prec1/5`` -> ``eval_top1/5`` (unless the header also has the new name)."""
    renamed = _RENAMES.get(cell)
    return renamed if renamed is not None and renamed not in header else cell


def _cells(rows: list[_Row], name: str, missing: float | None) -> list:
    """One column across rows that may come from different headers."""
    return [row.values[row.layout.slot[name]] if name in row.layout.slot else missing for row in rows]


def _is_written_nonfinite(cell: float | str) -> bool:
    number = _parse_number(cell) if isinstance(cell, str) and cell else None
    return number is not None and not math.isfinite(number)


def _extra_column(cells: list[str | None], index: pd.Index) -> pd.Series:
    """Float when every cell is a number (or a list of numbers); otherwise the cells as written."""
    numbers = [math.nan if cell is None else _parse_number(cell) for cell in cells]
    if all(number is not None for number in numbers):
        return pd.Series(numbers, index=index, dtype="float64")
    return pd.Series(cells, index=index, dtype=object)


def _span(epochs: list[int]) -> str:
    contiguous = epochs == list(range(epochs[0], epochs[0] + len(epochs)))
    if len(epochs) == 1:
        return str(epochs[0])
    if contiguous:
        return f"{epochs[0]}-{epochs[-1]}"
    shown = ", ".join(str(epoch) for epoch in epochs[:10])
    return shown + (f" and {len(epochs) - 10} more" if len(epochs) > 10 else "")


def _family(header: tuple[str, ...]) -> str:
    for columns, family in _FAMILIES:
        if header == columns:
            return family
    known = {name for columns, _ in _FAMILIES for name in columns}
    extra = [name for name in header if name not in known]
    missing = [name for name in ("train_loss",) if name not in header]
    parts = []
    if extra:
        parts.append(f"extra columns: {', '.join(extra)}")
    if missing:
        parts.append(f"missing: {', '.join(missing)}")
    return f"non-standard ({'; '.join(parts) or 'columns: ' + ','.join(header)})"


# --------------------------------------------------------------------------------------------
# The registered format (see ``formats.py``)


def _as_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def summary_contribution(csv_file: SummaryCsv) -> Contribution:
    """timm's own per-epoch record: every column, every epoch, with its line."""
    frame = csv_file.frame
    # An empty or unreadable cell is a missing value, not a reported NaN: it gets no point, so nothing
    # downstream can call it a divergence. A NaN counts from the first nan/inf written in its column on.
    first_written_nan = {str(e.data.get("column")): e.epoch for e in csv_file.events
                         if e.kind == "nonfinite" and e.epoch is not None}
    epochs = frame.index
    epoch_array = epochs.to_numpy(dtype=np.int64)
    values, kept = {}, {}
    for column in frame.columns:
        series = frame[column]
        numbers = (series.to_numpy(dtype=np.float64) if series.dtype == np.float64
                   else np.array([_as_float(value) for value in series.tolist()], np.float64))
        values[column] = numbers
        kept[column] = ~np.isnan(numbers) | (epoch_array >= first_written_nan.get(str(column), math.inf))
    lines = csv_file.lines.reindex(epochs).fillna(0).to_numpy(dtype=np.int64)
    columns = EpochColumns(csv_file.path, epoch_array, lines, values, kept)
    span = (int(epochs.min()), int(epochs.max())) if len(epochs) else None
    info = SourceInfo(csv_file.path, "summary_csv", f"summary.csv {csv_file.family}", None,
                      tuple(frame.columns), span, len(frame))
    return Contribution(
        format="summary_csv", sources=(info,), epochs=(EpochValues((), arrays=columns),), timm_version=csv_file.family or None,
        records=len(frame), events=csv_file.events, issues=csv_file.issues,
    )


class _SummaryCsvFormat:
    name = "summary_csv"
    names = ("summary.csv",)
    kind: SourceKind = "summary_csv"

    def sniff(self, name: str, head: bytes) -> str | None:
        if sniff_summary_csv(head):
            return "summary.csv"
        return "summary.csv rows without a header" if sniff_headerless_summary(head) else None

    def parse(self, path: Path, shown: str) -> Contribution:
        return summary_contribution(parse_summary_csv(path, shown))


SUMMARY_CSV = _SummaryCsvFormat()
