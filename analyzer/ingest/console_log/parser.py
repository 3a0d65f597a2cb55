"""The parser state: blocks in, Train/Test rows (by the bulk path or line by line, as one batch type)
and messages recorded in one place; ``finish`` hands it to assembly."""

from __future__ import annotations

import math
import re
from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np

from mnv4_postmortem.analyzer.ingest.console_log.assemble import Growing, assemble
from mnv4_postmortem.analyzer.ingest.console_log.bulk import (
    DIGITS_AS_ZERO, MAX_CACHED_TEMPLATES, MAX_TEMPLATES, PCT_ROWS, first_label, labelled_lines, Template,
)
from mnv4_postmortem.analyzer.ingest.console_log.data import MAX_LINE, MAX_LISTED_ISSUES, ConsoleLog, LrCalc, Version
from mnv4_postmortem.analyzer.ingest.console_log.grammar import (
    ANSI, INT_FIELDS, PREFIX, PREFIX_STARTS, TEST, TRAIN, LineKind, read_value,
)
from mnv4_postmortem.analyzer.ingest.console_log.messages import (
    HANDLERS, BestMetric, Crashed, DataConfigStart, Info, LrLine, Parsed, Restart, SkippedEval, TracebackStart,
    Unreadable, VersionHint, Warned, literal,
)
from mnv4_postmortem.analyzer.ingest.console_log.stream import Block
from mnv4_postmortem.analyzer.model import Event, IngestIssue, SourceRef

_LAYOUT_SAMPLES = 256
_FREQUENT = (b"Current checkpoints:",)   # same first 4 bytes (see first_label)


@dataclass(frozen=True, slots=True, eq=False)
class Batch:
    """Train or Test rows of one block, as either path produces them: ``rows`` are the lines' indices in
    the block (ascending), ``values`` one array per field of the kind (None: no line printed that field)."""

    rows: np.ndarray
    values: dict[str, np.ndarray | None]

class Parser:
    def __init__(self, path: str, fast: bool = True):
        self.path, self.fast = path, fast
        self.issues: list[IngestIssue] = []
        # Train/Test rows, stored in line order block by block; a block's rows read line by line
        # wait in ``pending`` and are merged with its bulk rows when the block is done
        self.rows: dict[str, Growing] = {kind.name: Growing(kind.columns) for kind in (TRAIN, TEST)}
        self.pending: dict[str, list[tuple[int, dict[str, Any]]]] = {kind.name: [] for kind in (TRAIN, TEST)}
        self.info: dict[str, Any] = {}
        self.info_refs: dict[str, SourceRef] = {}
        self.lr_calc: LrCalc | None = None
        self.events: list[Event] = []
        self.markers: list[tuple[int, str, dict[str, Any]]] = []   # restart markers: (line, kind, data)
        self.skipped_eval: list[int] = []
        self.best: list[tuple[int, float, int]] = []
        self.evidence: list[tuple[Version | None, Version | None]] = []
        self.loss_samples: list[tuple[str, int]] = []    # (loss token, lines it stands for)
        self.test_decimals: list[tuple[int, int]] = []   # (decimals of Acc@1, lines)
        self.prec_era = False
        self.warnings: dict[tuple[str, str], list[int]] = {}      # (category, text) -> [first line, count]
        self.crashes: dict[tuple[str, str], list[int]] = {}       # (kind, text) -> [first line, count]
        self.traceback_line: int | None = None
        self.data_config_line = -10
        self.unparsed: dict[str, list[int]] = {}                   # what -> [first line, count]
        self.long_lines: list[int] = []
        self.utf8_reported = False
        self.binary_reported = False
        self.last_line_recognized = True
        self.next_line = 1
        self.templates: dict[tuple[str, bytes], Template | None] = {}
        self.pct_rows = 0
        self.percent: list[np.ndarray] = []     # [idx, total, pct] of a sample of Train lines
        # src_line of rows whose line did not print a field (forks): NaN there is "absent", not "nan"
        self.missing: dict[str, array] = {k: array("q") for k in
                                          ("train_loss", "train_loss_avg", "lr", "eval_top1", "eval_top5")}

    # -- helpers ---------------------------------------------------------------------------
    def ref(self, line: int | None = None, offset: int | None = None) -> SourceRef:
        return SourceRef(self.path, line=line, offset=offset)

    def issue(self, message: str, line: int | None = None, offset: int | None = None, level: str = "warning") -> None:
        self.issues.append(IngestIssue(self.ref(line, offset), message, level))  # type: ignore[arg-type]

    def set_info(self, key: str, value: Any, line: int) -> None:
        self.info[key] = value
        self.info_refs[key] = self.ref(line)

    def count_problem(self, what: str, line: int) -> None:
        entry = self.unparsed.setdefault(what, [line, 0])
        entry[1] += 1

    def long_line(self, line: int, offset: int) -> None:
        self.long_lines.append(line)
        if len(self.long_lines) <= MAX_LISTED_ISSUES:
            self.issue(f"line longer than {MAX_LINE} bytes skipped", line, offset)

    # -- blocks ----------------------------------------------------------------------------
    def feed(self, block: Block) -> None:
        first_line = self.next_line
        if block.skipped:
            self.long_line(first_line, block.offset)
            self.next_line += 1
            return
        data, begin, end = block.data, block.begin, block.end
        if block.unterminated:
            self.next_line += 1
            self._last_line(self._decode(data[:-1], first_line, block.offset), first_line)
            for kind in (TRAIN, TEST):
                self._store(kind, self._line_batch(kind, first_line), first_line)
            return
        if data.find(b"\r", begin, end) >= 0:
            data = data[begin:end].replace(b"\r\n", b"\n")
            begin, end = 0, len(data)
        self._check_nul(data, begin, end, block.offset, first_line)
        # positions below are offsets into data (the whole chunk), not into the block
        a = np.frombuffer(data, np.uint8, count=end - begin, offset=begin)
        ends = np.flatnonzero(a == 10) + begin
        starts = np.empty_like(ends)
        starts[:1] = begin
        starts[1:] = ends[:-1] + 1
        lengths = ends - starts
        self.next_line += len(ends)
        too_long = lengths > MAX_LINE
        for row in np.flatnonzero(too_long).tolist():
            self.long_line(first_line + row, block.offset + int(starts[row]) - begin)
        handled = too_long | (lengths == 0)
        # Which lines are Train/Test lines (for the bulk path) and checkpoint list entries
        # `` ('path', metric)`` (plentiful, and nothing in them is used): one look at each line.
        # Also lines that come once an epoch and say nothing new after their first time in a block.
        specs = [("entry", 0, (b" ('",))]
        if self.fast:
            for name, labels in ((TRAIN.name, (b"Train:",)), (TEST.name, (b"Test: ", b"Test (EMA): ")),
                                 ("frequent", _FREQUENT)):
                first = first_label(data, begin, end, labels)
                if first >= 0:     # a log's prefix, if any, has a constant width
                    specs.append((name, first - max(data.rfind(b"\n", begin, first) + 1, begin), labels))
        found = labelled_lines(data, starts, ~handled, specs)
        handled |= found["entry"]
        if "frequent" in found:
            handled[np.flatnonzero(found["frequent"])[1:]] = True
        batches: dict[str, list[Batch]] = {TRAIN.name: [], TEST.name: []}
        if self.fast:
            for kind in (TRAIN, TEST):
                if kind.name in found:
                    done, batches[kind.name] = self._bulk(kind, data, starts, lengths,
                                                          np.flatnonzero(found[kind.name] & ~handled))
                    handled |= done
        for row in np.flatnonzero(~handled).tolist():
            line = first_line + row
            text = self._decode(data[starts[row]:ends[row]], line, block.offset + int(starts[row]) - begin)
            self.line(text, line)
        for kind in (TRAIN, TEST):
            self._store(kind, batches[kind.name] + self._line_batch(kind, first_line), first_line)

    def _decode(self, raw: bytes, line: int, offset: int) -> str:
        """A line as text; invalid UTF-8 is replaced, and reported once. (Lines read in bulk are
        ASCII by construction, so only lines read one by one need this.)"""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            if not self.utf8_reported:
                self.utf8_reported = True
                self.issue("invalid UTF-8, decoded with replacement characters (reported once)",
                           line + raw.count(b"\n", 0, error.start), offset + error.start)
            return raw.decode("utf-8", "replace")

    def _last_line(self, text: str, line: int) -> None:
        """The file's last line has no newline: parse it only if it is complete. Every Train/Test
        line ends with a parenthesised average, so one that does not is cut off."""
        if len(text) > MAX_LINE:
            return
        record = "Train:" in text or "Test" in text
        if record and not text.rstrip().endswith(")"):
            self.last_line_recognized = False
            return
        self.last_line_recognized = self.line(text, line) or not text.strip()

    def _check_nul(self, data: bytes, begin: int, end: int, offset: int, first_line: int) -> None:
        if self.binary_reported:
            return
        first = data.find(b"\x00", begin, end)
        if first >= 0 and data.count(b"\x00", begin, end) > 0.01 * (end - begin):
            self.binary_reported = True
            self.issue("binary data (NUL bytes) inside the log; lines there are ignored",
                       first_line + data.count(b"\n", begin, first), offset + first - begin)

    def _bulk(self, kind: LineKind, data: bytes, starts: np.ndarray, lengths: np.ndarray,
              rows: np.ndarray) -> tuple[np.ndarray, list[Batch]]:
        """Parse ``rows`` with templates, one line length at a time. Returns a mask of the rows done
        and their values, one Batch per template."""
        done = np.zeros(len(starts), bool)
        if not len(rows):
            return done, []
        skip = frozenset({"pct"}) if self.pct_rows > PCT_ROWS else frozenset()   # pct only votes on the layout
        pieces: list[Batch] = []
        # lengths fit 16 bits here (longer lines were dropped), which numpy sorts by radix
        rows = rows[np.argsort(np.minimum(lengths[rows], 0xFFFF).astype(np.uint16), kind="stable")]
        for group in np.split(rows, np.flatnonzero(np.diff(lengths[rows])) + 1):
            width = int(lengths[group[0]])
            padded = (width + 7) // 8 * 8
            group = group[starts[group] + padded <= len(data)]   # the 8-byte words stay inside the block
            if len(group) < 2:    # a shape of its own is cheaper line by line
                continue
            view = np.ndarray((len(data) - padded + 1,), f"S{padded}", data, 0, (1,))
            for _ in range(MAX_TEMPLATES):
                if not len(group):
                    break
                first = int(starts[group[0]])
                template = self._template(kind, bytes(data[first:first + width]))
                if template is None:
                    group = group[1:]
                    continue
                # [word position, line]: long rows make every numpy call below cover all lines
                words = np.ascontiguousarray(view[starts[group]].view("<u8").reshape(len(group), padded // 8).T)
                match = template.match(words)
                every = bool(match.all())
                if template.usable:
                    hit = group if every else group[match]
                    values, good = template.read(words if every else np.compress(match, words, axis=1), skip)
                    if not good.all():
                        hit = hit[good]
                        values = {k: (v[good] if v is not None else None) for k, v in values.items()}
                    if len(hit):
                        for flag in kind.flags:
                            values[flag] = np.full(len(hit), int(bool(template.consts.get(flag))))
                        pieces.append(Batch(hit, values))
                        done[hit] = True
                        self._samples(kind, template.tokens, template.consts, len(hit))
                        if kind is TRAIN and values.get("pct") is not None:
                            self.percent.append(np.vstack((values["idx"], values["total"], values["pct"])))
                            self.pct_rows += len(hit)
                group = group[:0] if every else group[~match]
        return done, pieces

    def _line_batch(self, kind: LineKind, first_line: int) -> list[Batch]:
        """The block's lines of ``kind`` read one by one (the reference path), as a Batch."""
        pending = self.pending[kind.name]
        if not pending:
            return []
        values = {name: np.array([record[name] for _, record in pending], np.int64 if name in INT_FIELDS else np.float64)
                  for name in kind.columns[1:]}
        batch = Batch(np.array([line for line, _ in pending], np.int64) - first_line, values)
        pending.clear()
        return [batch]

    def _store(self, kind: LineKind, batches: list[Batch], first_line: int) -> None:
        """The one place rows reach the parser state: one block's batches (bulk and line by line), in line order."""
        if not batches:
            return
        rows = np.concatenate([batch.rows for batch in batches]) if len(batches) > 1 else batches[0].rows
        order = np.argsort(rows, kind="stable") if len(batches) > 1 else None   # merges sorted runs
        store = self.rows[kind.name]
        store.append("line", first_line + rows, order)
        for name in kind.columns[1:]:
            parts = []
            for batch in batches:
                hit, column = batch.rows, batch.values.get(name)
                if column is None:
                    column = np.full(len(hit), -1 if name in INT_FIELDS else math.nan)
                    if name in kind.absent_as:
                        self.missing[kind.absent_as[name]].frombytes((first_line + hit).astype(np.int64).tobytes())
                parts.append(column)
            store.append(name, np.concatenate(parts) if len(parts) > 1 else parts[0], order)
        store.commit(len(rows))

    def _template(self, kind: LineKind, raw: bytes) -> Template | None:
        """The template of a line, shared by every line of the same shape (digits aside)."""
        key = (kind.name, raw.translate(DIGITS_AS_ZERO))
        if key in self.templates:
            return self.templates[key]
        template = None
        # a progress bar (\r) or colour codes need the per-line path; a template of such a line
        # is never built, so lines holding those bytes never match one
        if raw.isascii() and b"\r" not in raw and b"\x1b" not in raw:
            text = raw.decode("ascii")
            parsed = kind.spans(text)
            template = Template(raw, parsed[0], parsed[1], text) if parsed else None
        if len(self.templates) < MAX_CACHED_TEMPLATES:
            self.templates[key] = template
        return template

    def _samples(self, kind: LineKind, tokens: dict[str, str], consts: dict[str, Any], weight: int) -> None:
        """Evidence for the layout and version: the loss and Acc@1 number formats."""
        if kind is TRAIN and "loss" in tokens and len(self.loss_samples) < _LAYOUT_SAMPLES:
            self.loss_samples.append((tokens["loss"], weight))
        if kind is TEST:
            self.prec_era |= bool(consts.get("prec"))
            token = tokens.get("top1", "")
            if "." in token and len(self.test_decimals) < _LAYOUT_SAMPLES:
                self.test_decimals.append((len(token.split(".")[1]), weight))

    # -- one line (the reference path) -------------------------------------------------------
    def line(self, text: str, line: int) -> bool:
        """Parse one line of any kind; True when it was recognised."""
        if "\r" in text:
            text = text.rstrip("\r")
            text = text[text.rfind("\r") + 1:]
        if "\x1b" in text:
            text = ANSI.sub("", text)
        if "Train:" in text:
            if self.train_line(text, line):
                return True
            self.count_problem("Train: line", line)
        if "Test" in text and self.test_line(text, line):
            return True
        return self.message(text, line)

    def train_line(self, text: str, line: int) -> bool:
        return self._record(TRAIN, text, line)

    def test_line(self, text: str, line: int) -> bool:
        return self._record(TEST, text, line)

    def _record(self, kind: LineKind, text: str, line: int) -> bool:
        parsed = kind.spans(text)
        if parsed is None:
            return False
        spans, consts = parsed
        try:
            values = {name: read_value(text[span[0]:span[1]], name) if span else None for name, span in spans.items()}
        except ValueError:   # a digit class that int()/float() reject (e.g. non-ASCII digits)
            return False
        if kind is TRAIN and values["pct"] is not None and self.pct_rows < PCT_ROWS:
            self.percent.append(np.array([[values["idx"]], [values["total"]], [values["pct"]]]))
            self.pct_rows += 1
        record: dict[str, Any] = {}
        for name in kind.columns[1:len(kind.columns) - len(kind.flags)]:
            if values[name] is None:
                record[name] = -1 if name in INT_FIELDS else math.nan
                if name in kind.absent_as:
                    self.missing[kind.absent_as[name]].append(line)
            else:
                record[name] = values[name]
        for flag in kind.flags:
            record[flag] = int(bool(consts.get(flag)))
        self.pending[kind.name].append((line, record))
        self._samples(kind, {k: text[v[0]:v[1]] for k, v in spans.items() if v}, consts, 1)
        return True

    # -- messages ----------------------------------------------------------------------------
    def message(self, text: str, line: int) -> bool:
        prefix = PREFIX.match(text) if text[:1] in PREFIX_STARTS else None
        level = prefix.group("level") if prefix else None
        body = text[prefix.end():] if prefix else text
        if self.traceback_line is not None and self._traceback_continues(body, line):
            return True
        for key, pattern, handler in HANDLERS:
            if key in body:
                match = pattern.search(body)
                if match:
                    for parsed in handler(match):
                        self.record(parsed, line)
                    return True
        if level in ("WARNING", "ERROR", "CRITICAL"):
            self._warning_or_error(level, body.strip(), line)
            return True
        if line - self.data_config_line <= 8:
            return self._data_config_entry(body, line)
        return False

    def record(self, parsed: Parsed, line: int) -> None:
        """The one place what a message line says reaches the parser state."""
        match parsed:
            case Info(key, value):
                self.set_info(key, value, line)
            case VersionHint(low, high):
                self.evidence.append((low, high))
            case Restart(kind, data):
                self.markers.append((line, kind, dict(data)))
            case LrLine(lr, lr_base, global_batch, scaling):
                self.lr_calc = LrCalc(lr, lr_base, global_batch, scaling, self.ref(line))
            case Unreadable(what):
                self.count_problem(what, line)
            case DataConfigStart():
                self.data_config_line = line
                self.set_info("data_config", {}, line)
            case BestMetric(value, epoch):
                self.best.append((line, value, epoch))
            case SkippedEval():
                self.skipped_eval.append(line)
            case TracebackStart():
                self.traceback_line = line
            case Warned(category, text):
                self.warning(category, text, line)
            case Crashed(kind, text):
                self.crash(kind, text, line)

    def _traceback_continues(self, body: str, line: int) -> bool:
        if not body.strip() or body[0].isspace():
            return True
        if body.startswith(("During handling of the above exception", "The above exception was")):
            return True
        if body.startswith("Traceback (most recent call last)"):
            return False
        self.crash("crash", body.strip(), line)
        self.traceback_line = None
        return True

    def crash(self, kind: str, text: str, line: int) -> None:
        entry = self.crashes.setdefault((kind, text[:500]), [line, 0])
        entry[1] += 1
        if kind == "crash" and re.search(r"(?i)out of memory|OutOfMemoryError", text):
            self.crash("oom", text, line)

    def warning(self, category: str, text: str, line: int) -> None:
        entry = self.warnings.setdefault((category, text[:500]), [line, 0])
        entry[1] += 1

    def _warning_or_error(self, level: str, body: str, line: int) -> None:
        if level == "WARNING":
            self.warning("WARNING", body, line)
        else:
            self.crash("crash", body, line)

    def _data_config_entry(self, body: str, line: int) -> bool:
        match = re.match(r"\s*(input_size|interpolation|mean|std|crop_pct|crop_mode):\s*(.*?)\s*$", body)
        if not match:
            return False
        self.info["data_config"] = {**self.info.get("data_config", {}), match.group(1): literal(match.group(2))}
        self.info_refs.setdefault("data_config", self.ref(line))
        self.data_config_line = line
        return True

    # -- finishing ---------------------------------------------------------------------------
    def finish(self, n_lines: int, unterminated: bool) -> ConsoleLog:
        if self.traceback_line is not None:
            self.crash("crash", "Traceback (the log ends inside it)", self.traceback_line)
        if unterminated and not self.last_line_recognized:
            self.issue("the last line has no newline and was not parsed: the log is cut off here", n_lines)
            self.events.append(Event("truncated", f"log cut off at line {n_lines}", self.ref(n_lines)))
        for what, (first, count) in self.unparsed.items():
            more = f" (and {count - 1} more)" if count > 1 else ""
            self.issue(f"{what} not understood{more}", first)
        if len(self.long_lines) > MAX_LISTED_ISSUES:
            self.issue(f"{len(self.long_lines) - MAX_LISTED_ISSUES} more over-long lines skipped", self.long_lines[MAX_LISTED_ISSUES])
        return assemble(self, n_lines)
