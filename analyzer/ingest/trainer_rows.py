"""Shared plumbing of the other trainers' formats (DeiT log.txt, Lightning, HF Trainer, W&B, mmpretrain).

Each of those formats is one module with its own key table and its own knowledge of units; this module
holds what they all do the same way, so that each format module stays a table plus a little code:

- :func:`json_lines_text`: JSON-lines reading that keeps every good record before a bad one and names the
  file and line of each bad one (a truncated last line is a ``truncated`` event);
- :class:`Unit` and :func:`to_percent`: the normalized run holds accuracies in percent (``model.py``);
  a series in fractions of 1 is scaled, and the note says which unit and on what grounds;
- :func:`epoch_contribution`: per-epoch rows (dicts keyed by the trainer's names) into
  :class:`EpochValues`, the unknown keys kept under their own names and listed;
- :func:`step_frame`: the step frame's columns from per-step arrays.
- :func:`json_object`, :func:`train_loss_values`, :func:`first_lr_values`: a whole-file JSON object, and the
  per-epoch train_loss and lr points of per-step records.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from itertools import chain, repeat
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.ingest.contribution import Contribution, EpochColumn, EpochValues
from mnv4_postmortem.analyzer.ingest.decode import decode_bytes
from mnv4_postmortem.analyzer.ingest.files import open_input
from mnv4_postmortem.analyzer.model import STEP_COLUMNS, Event, IngestError, IngestIssue, SourceRef

# A JSON-lines record longer than this is not a metrics record (one epoch's dict is < 2 kB).
MAX_RECORD_CHARS = 1 << 20

UnitKind = Literal["percent", "fraction", "infer"]


@dataclass(frozen=True, slots=True)
class Unit:
    """What a format knows about an accuracy key's unit, and why (the reason is shown in ``inspect``)."""

    kind: UnitKind
    why: str


PERCENT_BY_TIMM = Unit("percent", "timm.utils.accuracy returns percent")
FRACTION_BY_HF = Unit("fraction", "the `evaluate` accuracy metric that HF Trainer examples use returns a fraction of 1")
INFER = Unit("infer", "the format does not fix it")


def to_percent(values: Sequence[float], unit: Unit, key: str) -> tuple[list[float], str]:
    """``values`` in percent, and the note that says how the unit was decided.

    A format that implies a unit is trusted unless a value contradicts it (a "fraction" above 1 is
    already a percentage). Otherwise a series whose every finite value is at most 1 is taken for a
    fraction: an accuracy in percent stays at or below 1 % only for a run at chance on 100+ classes,
    which then stays readable as a near-zero percentage either way.
    """
    if unit.kind == "percent":
        return list(values), f"{key}: percent ({unit.why})"
    numbers = np.array([math.nan if v is None else v for v in values], dtype="float64")
    finite = numbers[np.isfinite(numbers)]
    top = float(finite.max()) if finite.size else 0.0
    if unit.kind == "fraction" and top <= 1.0:
        return (numbers * 100.0).tolist(), f"{key}: fraction of 1, shown x100 ({unit.why})"
    if unit.kind == "fraction":
        return list(values), f"{key}: percent (a value of {top:g} > 1 contradicts the usual fraction; {unit.why})"
    if finite.size and top <= 1.0:
        return (numbers * 100.0).tolist(), f"{key}: fraction of 1, shown x100 (inferred: every value <= 1)"
    return list(values), f"{key}: percent (inferred: values above 1)"


# ------------------------------------------------------------------------------------------ JSON lines


@dataclass(slots=True)
class JsonLines:
    """The records of a JSON-lines file, each with its 1-based line number."""

    records: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    issues: list[IngestIssue] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


class TextFormat:
    """``parse`` for a format that reads its whole file as text: the file is decoded the way every reader
    decodes (``ingest/decode.py``: BOM, UTF-16, Latin-1 lines, each named in an issue) and handed to the
    format's own ``parse_text``, the entry ``report -`` uses for pasted text."""

    def parse_text(self, text: str, shown: str) -> Contribution:  # pragma: no cover - each format defines it
        raise NotImplementedError

    def parse(self, path: Path, shown: str) -> Contribution:
        with open_input(path, shown) as handle:
            text, issues = decode_bytes(handle.read(), shown)
        contribution = self.parse_text(text, shown)
        return replace(contribution, issues=(*issues, *contribution.issues)) if issues else contribution


def json_lines_text(text: str, shown: str) -> JsonLines:
    lines = text.split("\n")
    whole = _whole_records(lines)
    if whole is not None:
        return JsonLines(records=whole)
    return _json_lines_one_by_one(lines, shown)


def _whole_records(lines: list[str]) -> list[tuple[int, dict[str, Any]]] | None:
    """The common case in one ``json.loads`` (a third faster than one call per line): every non-empty line is
    one whole JSON object. None otherwise, and the lines are read one by one. One object per line is what the
    count and the types check: a line holding two objects, or an object spread over two lines, changes the
    count or breaks the joined text (a line with no object leaves a ``,,`` or a non-object)."""
    numbers = [number for number, line in enumerate(lines, start=1) if line]
    if not numbers:
        return None
    try:
        records = json.loads("[" + ",".join(filter(None, lines)) + "]")
    except ValueError:
        return None
    if len(records) != len(numbers) or set(map(type, records)) != {dict}:
        return None
    return list(zip(numbers, records))


def _json_lines_one_by_one(lines: list[str], shown: str) -> JsonLines:
    out = JsonLines()
    loads = json.loads
    records = out.records
    for number, line in enumerate(lines, start=1):
        if line[:1] == "{" and line[-1:] == "}":  # the common case: a whole record, nothing around it
            try:
                record = loads(line)
            except ValueError:
                pass
            else:
                if isinstance(record, dict):
                    records.append((number, record))
                    continue
        stripped = line.strip()
        if not stripped:
            continue
        if len(stripped) > MAX_RECORD_CHARS:
            out.issues.append(IngestIssue(SourceRef(shown, line=number), f"line longer than {MAX_RECORD_CHARS} characters, skipped"))
            continue
        try:
            record = loads(stripped)
        except ValueError as exc:
            last_number = max((n for n, text_line in enumerate(lines, start=1) if text_line.strip()), default=0)
            # cut off: the parser hit the end, or a string the end left open (its error points at the string's start)
            last = number == last_number and (exc.pos >= len(stripped) - 1 or exc.msg.startswith("Unterminated string"))
            what = "truncated record (the file ends mid-record)" if last else f"not a JSON record ({exc.msg}, column {exc.colno})"
            out.issues.append(IngestIssue(SourceRef(shown, line=number), f"{what}; skipped, the records before it are kept"))
            if last:
                out.events.append(Event("truncated", "the file ends mid-record", SourceRef(shown, line=number)))
            continue
        if not isinstance(record, dict):
            out.issues.append(IngestIssue(SourceRef(shown, line=number), "a JSON value that is not an object; skipped"))
            continue
        out.records.append((number, record))
    return out


# ------------------------------------------------------------------------------------------ epoch rows


def as_float(value: Any) -> float | None:
    """A number from a record (numbers and numeric strings; never booleans), or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


@dataclass(frozen=True, slots=True)
class EpochRows:
    """Per-epoch values as the format read them, in the trainer's names: ``{key: (epochs, values, refs)}``,
    three lists of equal length, each epoch once, in the order the epochs first appear."""

    values: Mapping[str, tuple[list[int], list[float], list[SourceRef]]]


_PLAIN_NUMBERS = frozenset({int, float})


def placed_rows(records: Iterable[tuple[int, Mapping[str, Any]]], epoch_of: Callable[[Mapping[str, Any]], int | None],
                shown: str, skipped: str) -> tuple[list[tuple[int, Mapping[str, Any], SourceRef]], list[IngestIssue]]:
    """``(line, record)`` records as the ``(epoch, record, ref)`` rows :func:`collect` takes; a record whose
    epoch ``epoch_of`` cannot place is skipped with an issue at its line (``skipped``: the issue's message)."""
    rows: list[tuple[int, Mapping[str, Any], SourceRef]] = []
    issues: list[IngestIssue] = []
    for line, record in records:
        epoch = epoch_of(record)
        if epoch is None:
            issues.append(IngestIssue(SourceRef(shown, line=line), skipped))
        else:
            rows.append((epoch, record, SourceRef(shown, line=line)))
    return rows, issues


def collect(rows: Iterable[tuple[int, Mapping[str, Any], SourceRef]], skip: Iterable[str] = ()) -> EpochRows:
    """``(epoch, record, ref)`` rows into per-key series; a later row of the same epoch wins (a resume).
    A value that is not a number (:func:`as_float`) is no point; a missing key neither."""
    rows = list(rows)
    skipped = set(skip)
    epochs = [row[0] for row in rows]
    records = [row[1] for row in rows]
    refs = [row[2] for row in rows]
    keys = [key for key in dict.fromkeys(chain.from_iterable(records)) if key not in skipped]
    if len(set(epochs)) < len(epochs):  # a resumed epoch: the latest row of each epoch, the slow way
        return _collect_resumed(rows, keys)
    values: dict[str, tuple[list[int], list[float], list[SourceRef]]] = {}
    first_row: dict[str, int] = {}
    for key in keys:
        raw = list(map(dict.get, records, repeat(key)))
        if set(map(type, raw)) <= _PLAIN_NUMBERS:  # the common case: a number in every row, one array conversion
            values[key], first_row[key] = (epochs, np.asarray(raw, dtype="float64").tolist(), refs), 0
            continue
        numbers = list(map(as_float, raw))
        kept = [i for i, number in enumerate(numbers) if number is not None]
        if kept:
            values[key] = ([epochs[i] for i in kept], [numbers[i] for i in kept], [refs[i] for i in kept])
            first_row[key] = kept[0]
    # keys in the order their first number appears (row, then place in the row), as a row-by-row reading has them
    order = sorted(values, key=lambda k: (first_row[k], _position(records[first_row[k]], k)))
    return EpochRows({key: values[key] for key in order})


def _position(record: Mapping[str, Any], key: str) -> int:
    return next(i for i, name in enumerate(record) if name == key)


def _collect_resumed(rows: list[tuple[int, Mapping[str, Any], SourceRef]], keys: list[str]) -> EpochRows:
    wanted = set(keys)
    series: dict[str, dict[int, tuple[float, SourceRef]]] = {}
    for epoch, record, ref in rows:
        for key, raw in record.items():
            if key in wanted and (number := as_float(raw)) is not None:
                series.setdefault(key, {})[epoch] = (number, ref)
    values = {}
    for key, points in series.items():
        if points:
            values[key] = (list(points), [v for v, _ in points.values()], [r for _, r in points.values()])
    return EpochRows(values)


@dataclass(frozen=True, slots=True)
class Mapped:
    """What :func:`epoch_contribution` made of a format's rows."""

    epochs: tuple[EpochValues, ...]
    metrics: tuple[str, ...]          # canonical columns filled
    unknown: tuple[str, ...]          # the format's keys kept under their own names
    notes: tuple[str, ...]            # units and unknown keys, for inspect
    span: tuple[int, int] | None


def epoch_contribution(
    rows: EpochRows,
    columns: Mapping[str, str],
    units: Mapping[str, Unit],
    *,
    ignore: Iterable[str] = (),
) -> Mapped:
    """Map the trainer's keys to the run's columns (``columns``), accuracies through :func:`to_percent`
    (``units``, by the trainer's key); every other numeric key is kept under its own name and listed."""
    ignored = set(ignore)
    bulk: list[EpochColumn] = []
    notes: list[str] = []
    metrics: list[str] = []
    unknown: list[str] = []
    for key, (epochs, numbers, refs) in rows.values.items():
        if key in ignored:
            continue
        column = columns.get(key)
        if key in units:
            numbers, note = to_percent(numbers, units[key], key)
            notes.append(note)
        if column is None:
            column = key
            unknown.append(key)
        metrics.append(column)
        bulk.append(EpochColumn(column, epochs, numbers, refs))
    if unknown:
        notes.append("kept under their own names (no canonical column): " + ", ".join(sorted(unknown)))
    every = [(min(epochs), max(epochs)) for epochs, _, _ in rows.values.values() if epochs]
    span = (min(low for low, _ in every), max(high for _, high in every)) if every else None
    return Mapped((EpochValues(columns=bulk),) if bulk else (), tuple(dict.fromkeys(metrics)), tuple(unknown), tuple(notes), span)


def step_frame(
    *,
    epoch: Sequence[float],
    idx: Sequence[float],
    per_epoch: Sequence[float],
    update: Sequence[float],
    loss: Sequence[float],
    lr: Sequence[float] | None,
    src_line: Sequence[int],
    src_file: str,
    loss_avg: Sequence[float] | None = None,
) -> pd.DataFrame:
    """The step frame (``model.STEP_COLUMNS`` + ``segment``, ``src_line``, ``src_file``) of a trainer's
    per-step records; columns a trainer does not log are NaN."""
    n = len(update)
    nan = np.full(n, np.nan)
    given = {"epoch": epoch, "idx": idx, "per_epoch": per_epoch, "update": update, "train_loss": loss,
             "train_loss_avg": loss_avg, "lr": lr}
    columns = {c: np.asarray(given[c], dtype="float64") if given.get(c) is not None else nan for c in STEP_COLUMNS}
    columns["segment"] = np.zeros(n, dtype="int64")
    columns["src_line"] = np.asarray(src_line, dtype="int64")
    # one file per frame: a categorical of one category (the merge makes the column categorical anyway)
    columns["src_file"] = pd.Categorical.from_codes(np.zeros(n, dtype="int8"), categories=[src_file])
    return pd.DataFrame(columns)


def json_object(text: str, shown: str) -> dict[str, Any]:
    """``text`` as a JSON object (a whole-file JSON format: trainer_state.json's siblings, wandb-summary.json),
    else an :class:`IngestError` at the line where it breaks."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise IngestError(f"not readable JSON ({exc.msg})", SourceRef(shown, line=exc.lineno)) from None
    if not isinstance(value, dict):
        raise IngestError("not a JSON object", SourceRef(shown, line=1))
    return value


def train_loss_values(epoch: np.ndarray, loss: np.ndarray, lines: np.ndarray, shown: str) -> EpochValues:
    """Per-epoch train_loss: the mean of the epoch's logged step losses (:func:`mean_by_epoch`), cited at
    the epoch's last logged step."""
    last_line = {int(e): int(l) for e, l in zip(epoch, lines)}
    return EpochValues([("train_loss", e, v, SourceRef(shown, line=last_line[e]))
                        for e, v in mean_by_epoch(epoch, loss).items()])


def first_lr_values(epoch: np.ndarray, lr: np.ndarray, lines: np.ndarray, shown: str) -> EpochValues:
    """Per-epoch lr: the first logged lr of each epoch (what timm records for the epoch), cited at its line."""
    first: dict[int, tuple[float, int]] = {}
    for e, value, l in zip(epoch, lr, lines):
        first.setdefault(int(e), (float(value), int(l)))
    return EpochValues([("lr", e, v, SourceRef(shown, line=l)) for e, (v, l) in first.items()])


def mean_by_epoch(epoch: np.ndarray, values: np.ndarray) -> dict[int, float]:
    """The mean of a per-step series per epoch (what timm's per-epoch train_loss is: the epoch's average)."""
    keep = np.isfinite(epoch) & np.isfinite(values)
    if not keep.any():
        return {}
    frame = pd.DataFrame({"epoch": epoch[keep].astype("int64"), "v": values[keep]})
    return {int(k): float(v) for k, v in frame.groupby("epoch")["v"].mean().items()}
