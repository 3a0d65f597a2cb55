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
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

import pandas as pd

from mnv4_postmortem.analyzer.model import EPOCH_COLUMNS, Event, IngestError, IngestIssue, SourceRef

__all__ = ["SummaryCsv", "parse_summary_csv", "sniff_summary_csv"]

# A real row is < 300 bytes; anything longer than this is not a summary row. Reading with a cap
# keeps a binary file without newlines (or a hostile multi-GB line) from being read into memory.
MAX_LINE_BYTES = 64 * 1024
# Hostile files can have millions of bad lines; list the first ones and count the rest.
MAX_LISTED_ISSUES = 20
# Epoch numbers beyond this are junk (and would overflow an int64 index).
MAX_EPOCH = 10**9

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
    first_line = head.split(b"\n", 1)[0]
    try:
        text = first_line.decode("utf-8").lstrip(_UTF8_BOM).strip()
    except UnicodeDecodeError:
        return False
    if "\x00" in text:
        return False
    try:
        cells = next(csv.reader((text,)), [])
    except csv.Error:
        return False
    names = [cell.strip() for cell in cells]
    return bool(names) and names[0] == "epoch" and "train_loss" in names


def parse_summary_csv(path: Path, display_path: str | None = None) -> SummaryCsv:
    """Parse a timm summary.csv. Raises :class:`IngestError` only when nothing usable is in it."""
    shown = display_path if display_path is not None else str(path)
    try:
        with open(path, "rb") as handle:
            return _Parser(shown).run(handle)
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}", SourceRef(shown)) from None


# --------------------------------------------------------------------------------------------
# Reading lines


@dataclass(slots=True)
class _Line:
    number: int        # 1-based physical line
    offset: int        # byte offset of the line's start
    text: str | None   # decoded, without the line terminator; None when the line was unreadable
    problem: str = ""  # why ``text`` is None
    terminated: bool = True


def _read_lines(handle: BinaryIO) -> Iterator[_Line]:
    """Physical lines, decoded one by one so a bad byte costs one line, not the file."""
    number, offset = 0, 0
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


#PARSER#


def _nonfinite_events(frame: pd.DataFrame, lines: pd.Series, ref) -> list[Event]:
    """The first nan/inf of each numeric column (written by timm as ``nan``/``inf``)."""
    events = []
    for name in frame.columns:
        column = frame[name]
        if column.dtype != "float64":
            continue
        bad = column[~column.map(math.isfinite).astype(bool)]
        if bad.empty:
            continue
        epoch = int(bad.index[0])
        value = float(bad.iloc[0])
        events.append(
            Event(
                "nonfinite",
                f"{name} is {value} at epoch {epoch}",
                ref(int(lines[epoch])),
                epoch,
                {"column": name, "value": str(value)},
            )
        )
    return events


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
