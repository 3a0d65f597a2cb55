"""timm's console output (``train.py`` stdout + stderr captured to a file), parsed as a stream.

Every format in timm-formats.md §2-§7 and §14 is recognised, wherever the line sits: lines are
found with ``re.search`` semantics, so timestamps (``2022-11-08 09:40:11  Train: ...``), Python
logging prefixes (``2022-02-09 03:18:15,470 -  train: [ INFO] - ...``), ``[rank0]:`` and indentation
are all fine. ANSI colour codes are removed; a carriage-return progress bar keeps only the text
after its last ``\\r`` (a CRLF is just a line end); invalid UTF-8 is replaced and reported once.

What comes out (:class:`ConsoleLog`):

- ``steps``: one row per ``Train:`` line, columns ``model.STEP_COLUMNS`` + ``segment``, ``src_line``.
  Layouts A-D (§3) and timm-derived lines with extra fields (RepGhost's ``Acc@1``/``Acc@5``) parse;
  lines without ``Loss:``/``LR:`` (a fork that prints ``FP:``/``BP:`` timings instead) keep NaN there.
  ``update = epoch * per_epoch + idx``. In the v1.0.16-1.0.19 throughput bug (``rate ~= 1 / time``,
  ``throughput_bug``) ``samples_per_sec`` is ``rate * global batch`` when the LR line gives the
  global batch, else NaN.
- ``evals``: one row per validation block (``Test:`` -> pass ``model``, ``Test (EMA):`` -> ``ema``):
  the running averages on the block's last line (``[N/N]``, or the last line seen if the block was
  cut). Its epoch is the epoch of the ``Train:`` lines before it. Repeated epochs after a restart
  are kept (their ``segment`` differs).
- ``segment``: 0 for the first run in the file, +1 at every restart: resume or start-up messages
  after training output, or an (epoch, idx) counter that goes back.
- ``events``: ``resume``, ``crash`` (traceback, ``ERROR:``), ``oom``, ``nonfinite`` (first NaN/inf
  per metric, pass and segment), ``best_metric``, ``warning`` (``WARNING:`` lines and interleaved
  library warnings, deduplicated with a count, at most ``MAX_WARNINGS`` kinds), ``truncated``,
  ``skipped_eval``.
- ``info`` (each key has a :class:`SourceRef` in ``info_refs``; with several runs in one file the
  latest value wins):

  ``model`` (str, as printed), ``param_count`` (int), ``data_config`` (dict: ``input_size`` tuple,
  ``interpolation``, ``mean``, ``std``, ``crop_pct``, ``crop_mode``: whatever the log shows),
  ``amp`` (``"native"`` | ``"apex"`` | ``"off"``), ``train_dtype`` (``"float32"``, ``"bfloat16"``,
  ``"mixed"`` ...), ``optimizer`` (dict: ``class``, ``name``, ``params`` dict; v1.0.12+),
  ``scheduled_epochs`` (int), ``lr_step_unit`` (``"epoch"`` | ``"update"``), ``device`` (str),
  ``world_size`` (int), ``distributed`` (bool), ``ddp`` (``"native"`` | ``"apex"`` | ``"task"``),
  ``sync_bn`` (True), ``dist_bn`` (True), ``task_criterion`` (str, v1.0.23+), ``kd_teacher`` (str),
  ``pretrained_source`` (``"hf-hub:<id>"``, ``"url:<url>"`` or ``"file:<path>"``),
  ``pretrained_missing_keys`` (tuple of str: weights re-initialised, e.g. a new classifier),
  ``loaded_state_dict`` (str: the file of ``Loaded state_dict[_ema] from checkpoint``, from
  ``--initial-checkpoint``, ``--pretrained-path`` or an EMA resume), ``resume_checkpoint`` (str), ``resume_epoch`` (int, the epoch the
  checkpoint holds), ``best_metric`` (float), ``best_epoch`` (int), ``num_classes`` (int, only when a
  line shows ``num_classes=N``), ``compile_backend`` (str), ``naflex`` (True).
- ``lr_calc``: the ``Learning rate (X) calculated from base learning rate (Y) and [effective ]global
  batch size (Z) with S scaling.`` line (v0.8.2+), the only place the LR actually used is printed.
- ``layout`` (``"A"``-``"D"``, §3) and ``timm_version`` (a range guessed with the §14 rules).

Streaming and speed: the file is read in ``CHUNK_SIZE`` blocks of whole lines and never held whole.
``Train:`` and ``Test:`` lines are parsed in bulk: lines of one shape (a "template", see
:class:`_Template`) are checked and read with numpy, a block at a time. A line that fits no template
goes to the per-line regex parser, which is the reference: templates are built from its spans, so
both give the same numbers (tests check this). Lines over ``MAX_LINE`` bytes are skipped with one
issue each, found without building them in memory.

Bad input: an empty file gives an empty ``ConsoleLog`` with an issue; a file that is mostly not text
(NUL bytes, invalid UTF-8) from its first line on raises :class:`IngestError` with the byte offset,
while junk after good lines only adds an issue (every good line before it is kept). A UTF-16 file (a
Windows shell redirect) is transcoded. Nothing but ``IngestError`` escapes ``parse_console_log``.
"""

from __future__ import annotations

import ast
import codecs
import math
import re
from array import array
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO, Callable, Iterator, Mapping

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.ingest.contribution import Contribution, Effective, EpochValues
from mnv4_postmortem.analyzer.ingest.files import open_input
from mnv4_postmortem.analyzer.model import (
    STEP_COLUMNS,
    Event,
    IngestError,
    IngestIssue,
    SourceInfo,
    SourceKind,
    SourceRef,
)

__all__ = ["CONSOLE_LOG", "ConsoleLog", "LrCalc", "log_contribution", "parse_console_log", "parse_console_stream", "sniff_console_log"]

CHUNK_SIZE = 8 << 20          # bytes read per block: large enough to amortise numpy calls
MAX_LINE = 64 << 10           # a longer line is skipped (timm's longest are a few hundred bytes)
HEAD_SIZE = 64 << 10          # the sample that decides "text or binary"
MAX_WARNINGS = 50             # distinct warning messages kept as events
MAX_LISTED_ISSUES = 20        # per kind of repeated problem; the rest are counted

# ---------------------------------------------------------------------------------------------
# Public data


@dataclass(frozen=True, slots=True)
class LrCalc:
    """``Learning rate (X) calculated from base learning rate (Y) and [effective ]global batch size (Z) with S scaling.``"""

    lr: float
    lr_base: float
    global_batch: float
    scaling: str
    source: SourceRef


@dataclass(frozen=True, slots=True, eq=False)
class ConsoleLog:
    """A parsed timm console log (see the module docstring for every field's meaning)."""

    path: str
    steps: pd.DataFrame
    evals: pd.DataFrame
    info: Mapping[str, Any]
    info_refs: Mapping[str, SourceRef]
    lr_calc: LrCalc | None
    events: tuple[Event, ...]
    issues: tuple[IngestIssue, ...]
    layout: str | None
    timm_version: str | None
    n_lines: int
    throughput_bug: bool

    @property
    def family(self) -> str:
        """A short description for ``SourceInfo.family``, e.g. ``timm log layout D (>=1.0.23)``."""
        text = "timm log" if self.layout is None else f"timm log layout {self.layout}"
        return f"{text} ({self.timm_version})" if self.timm_version else text


EVAL_COLUMNS: tuple[str, ...] = ("epoch", "pass", "eval_loss", "eval_top1", "eval_top5", "segment", "src_line")

# ---------------------------------------------------------------------------------------------
# Line grammar (the reference parser; the template path below reads what it would read)

_NUM = r"[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|(?i:nan|inf(?:inity)?))"
_TRAIN_HEAD = re.compile(r"Train:\s*(\d{1,9})\s*\[\s*(\d{1,9})\s*/\s*(\d{1,9})\s*(?:\(\s*(\d{1,9})\s*%\s*\))?\s*\]")
_LOSS = re.compile(rf"Loss:\s*({_NUM})(?:\s*\(\s*({_NUM})\s*\))?")
_TIME = re.compile(rf"Time(?:-Batch)?:\s*({_NUM})s?,?\s*(?:({_NUM})/s)?")
_LR = re.compile(rf"LR:\s*({_NUM})")
_DATA = re.compile(rf"Data:\s*({_NUM})")
_TEST_HEAD = re.compile(r"Test( \(EMA\))?\s*:\s*\[\s*(\d{1,9})\s*/\s*(\d{1,9})\s*\]")
_ACC1 = re.compile(rf"(Acc|Prec)@1:\s*({_NUM})(?:\s*\(\s*({_NUM})\s*\))?")
_ACC5 = re.compile(rf"(?:Acc|Prec)@5:\s*({_NUM})(?:\s*\(\s*({_NUM})\s*\))?")
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_TIMESTAMP = r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)?"
# Launcher and logging prefixes, stripped before messages are matched (Train/Test use search()).
_PREFIX = re.compile(
    rf"^(?:\[rank\d+\]:\s?)?(?:{_TIMESTAMP}\s+-\s+[\w.]+:\s+\[\s*(?P<level>[A-Z]+)\s*\]\s+-\s|{_TIMESTAMP}\s+)?"
)
_PREFIX_STARTS = frozenset("[0123456789")
_PY_WARNING = re.compile(r"(?P<file>[^\s:]+\.py):(?P<lineno>\d+): (?P<category>\w*Warning): (?P<message>.*)")


# ---------------------------------------------------------------------------------------------
# Reading: blocks of whole lines, never one line longer than MAX_LINE in memory


@dataclass(frozen=True, slots=True)
class _Block:
    data: bytes | bytearray     # the block's lines are data[begin:end], each ending in b"\n"; a
    begin: int                  # chunk is read into one reused buffer and not copied, so a block
    end: int                    # is valid until the next one is asked for. Empty: a skipped line
    offset: int                 # byte offset of data[begin] in the (UTF-8) stream
    unterminated: bool = False  # the file's last line, which had no newline (one was added)
    skipped: bool = False       # one line longer than MAX_LINE, left out


def _line_blocks(readinto: Callable[[memoryview], int], chunk_size: int, max_line: int) -> Iterator[_Block]:
    """Cut a byte stream into blocks of whole lines. A line over ``max_line`` bytes becomes a
    ``skipped`` block as soon as that many bytes of it are seen, and streams past unread. A chunk's
    whole lines are one block, read in place; the line it shares with the previous chunk is a small
    block of its own."""
    buffer = bytearray(chunk_size)     # reused: no fresh memory (and page faults) per chunk
    view = memoryview(buffer)
    carry, carry_offset, offset, skipping = b"", 0, 0, False
    while size := readinto(view):
        data_offset, offset = offset, offset + size
        start = 0
        if skipping:
            start = buffer.find(b"\n", 0, size) + 1
            if not start:
                continue
            skipping = False
        if carry:
            newline = buffer.find(b"\n", start, size)
            if newline >= 0 and len(carry) + newline - start > max_line:
                yield _Block(b"", 0, 0, carry_offset, skipped=True)
                carry, start = b"", newline + 1
            elif newline >= 0:
                head = b"".join((carry, view[start:newline + 1]))
                yield _Block(head, 0, len(head), carry_offset)
                carry, start = b"", newline + 1
        cut = buffer.rfind(b"\n", start, size)
        if cut >= 0 and not carry:
            yield _Block(buffer, start, cut + 1, data_offset + start)
            start = cut + 1
        if carry:
            carry = b"".join((carry, view[start:size]))
        else:
            carry, carry_offset = bytes(view[start:size]), data_offset + start
        if len(carry) > max_line:
            yield _Block(b"", 0, 0, carry_offset, skipped=True)
            carry, skipping = b"", True
    if carry:
        yield _Block(carry + b"\n", 0, len(carry) + 1, carry_offset, unterminated=True)


def _utf16_reader(stream: BinaryIO, encoding: str) -> Callable[[memoryview], int]:
    """Windows PowerShell redirects write UTF-16; transcode to UTF-8 on the fly (a ``readinto``)."""
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    pending = bytearray()
    done = False

    def readinto(target: memoryview) -> int:
        nonlocal done
        while len(pending) < len(target) and not done:
            raw = stream.read(len(target))
            pending.extend(decoder.decode(raw, final=not raw).encode("utf-8"))
            done = not raw
        size = min(len(target), len(pending))
        target[:size] = pending[:size]
        del pending[:size]
        return size

    return readinto


def _binary_offset(head: bytes) -> int | None:
    """Offset of the first non-text byte when ``head`` is mostly not text; None for text."""
    if not head:
        return None
    codes = np.frombuffer(head, np.uint8)
    control = (codes < 32) & ~np.isin(codes, (8, 9, 10, 11, 12, 13, 27)) | (codes == 127)
    text = head.decode("utf-8", "replace")
    bad = int(control.sum()) + text.count("\ufffd")
    if (codes == 0).mean() <= 0.01 and bad <= 0.1 * max(len(text), 1):
        return None
    first_control = int(np.argmax(control)) if control.any() else len(head)
    try:
        head.decode("utf-8")
        first_invalid = len(head)
    except UnicodeDecodeError as error:
        first_invalid = error.start
    return min(first_control, first_invalid)


# ---------------------------------------------------------------------------------------------
# Reference parsers: where the numbers of a Train/Test line are. The per-line path reads the values
# from these spans with float()/int(); the template path below reads the same spans in bulk.

_Spans = dict[str, "tuple[int, int] | None"]


def _span(match: re.Match | None, group: int, shift: int) -> tuple[int, int] | None:
    if match is None or match.group(group) is None:
        return None
    return match.start(group) + shift, match.end(group) + shift


def _train_spans(text: str) -> tuple[_Spans, dict[str, Any]] | None:
    head = _TRAIN_HEAD.search(text)
    if not head:
        return None
    shift = head.end()
    rest = text[shift:]
    loss, time, lr, data = _LOSS.search(rest), _TIME.search(rest), _LR.search(rest), _DATA.search(rest)
    if not (loss or time or lr):
        return None
    spans = {"epoch": head.span(1), "idx": head.span(2), "total": head.span(3), "pct": _span(head, 4, 0),
             "loss": _span(loss, 1, shift), "loss_avg": _span(loss, 2, shift),
             "batch_time": _span(time, 1, shift), "rate": _span(time, 2, shift),
             "lr": _span(lr, 1, shift), "data": _span(data, 1, shift)}
    return spans, {}


def _test_spans(text: str) -> tuple[_Spans, dict[str, Any]] | None:
    head = _TEST_HEAD.search(text)
    if not head:
        return None
    shift = head.end()
    rest = text[shift:]
    loss, top1, top5 = _LOSS.search(rest), _ACC1.search(rest), _ACC5.search(rest)
    if not loss:
        return None
    # the running average in parentheses; a line without one (not timm's format) gives its value
    spans = {"idx": head.span(2), "last": head.span(3),
             "loss": _span(loss, 2, shift) or _span(loss, 1, shift),
             "top1": _span(top1, 3, shift) or _span(top1, 2, shift),
             "top5": _span(top5, 2, shift) or _span(top5, 1, shift)}
    return spans, {"ema": head.group(1) is not None, "prec": bool(top1) and top1.group(1) == "Prec"}


@dataclass(frozen=True, slots=True)
class _Kind:
    name: str
    spans: Callable[[str], tuple[_Spans, dict[str, Any]] | None]
    fields: tuple[str, ...]
    absent_as: Mapping[str, str]      # field -> output column whose NaN means "not printed"
    flags: tuple[str, ...] = ()       # per-line constants of the line's shape (``Test (EMA)``: ema)
    sampled: tuple[str, ...] = ()     # read only for a sample of lines, kept apart (Train: pct)

    @property
    def columns(self) -> tuple[str, ...]:
        """What is stored per line."""
        return ("line", *(f for f in self.fields if f not in self.sampled), *self.flags)


_TRAIN = _Kind("train", _train_spans, ("epoch", "idx", "total", "pct", "loss", "loss_avg", "batch_time", "rate", "lr", "data"),
               {"loss": "train_loss", "loss_avg": "train_loss_avg", "lr": "lr"}, sampled=("pct",))
_TEST = _Kind("test", _test_spans, ("idx", "last", "loss", "top1", "top5"), {"top1": "eval_top1", "top5": "eval_top5"},
              ("ema",))
_INT_FIELDS = frozenset({"line", "epoch", "idx", "total", "pct", "last", "ema"})


def _value(token: str, name: str) -> float | int:
    return int(token) if name in _INT_FIELDS else float(token)


# ---------------------------------------------------------------------------------------------
# The template path: lines of one shape parsed together.
#
# timm prints fixed-width fields, so most Train/Test lines of a log differ from each other only in
# their digits. A template is one line with its digits turned into wildcards (digits of words like
# ``Acc@1`` stay literal). Every line of the same length that matches it byte for byte (a digit
# wherever the template has a wildcard) has its numbers at the same columns, and the reference
# regexes would find the same spans in it, because they treat all digits alike. So the template's
# spans, found once with the reference parser, hold for all of them: checking a block of lines is a
# few 64-bit word operations per 8 bytes, and reading a number is a multiply-add per digit column.
# Values are exact: an integer mantissa (at most 15 digits) and one multiply or divide by an exact
# power of ten, i.e. the correctly rounded double, the same as float() gives.

_POW10 = np.array([10.0 ** k for k in range(23)])   # exact doubles: 10**22 is the last one
_DIGIT_RUN = re.compile(r"\d+")
_NUMBER_SHAPE = re.compile(r"([-+]?)(\d*)(?:\.(\d*))?(?:[eE]([-+]?)(\d+))?")
_MAX_MANTISSA_DIGITS = 15     # 10**15 < 2**53: the mantissa is an exact double
_MAX_TEMPLATES = 64           # shapes tried per line length and block before the rest go line by line
_MAX_CACHED_TEMPLATES = 4096
_PCT_ROWS = 200_000           # Train lines whose percent field is read (enough to tell layout C from D)
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")


@dataclass(frozen=True, slots=True)
class _Field:
    columns: tuple[int, ...]           # mantissa digit columns, most significant first
    fraction: int                      # mantissa digits after the point
    exponent_columns: tuple[int, ...]
    exponent_sign: int
    sign: int
    constant: float | None = None      # nan / inf


def _field(text: str, span: tuple[int, int], pad: tuple[int, ...], integer: bool) -> _Field | None:
    """How to read one number of a template; None when it cannot be read exactly in bulk."""
    start, end = span
    token = text[start:end]
    shape = _NUMBER_SHAPE.fullmatch(token)
    if not shape or not (shape.group(2) or shape.group(3)):
        try:
            return _Field((), 0, (), 1, 1, float(token))
        except ValueError:
            return None
    whole = start + len(shape.group(1))
    columns = list(pad) + list(range(whole, whole + len(shape.group(2))))
    if shape.group(3) is not None:
        columns += range(start + shape.start(3), start + shape.end(3))
    exponent = tuple(range(start + shape.start(5), start + shape.end(5))) if shape.group(5) else ()
    if len(columns) > (9 if integer else _MAX_MANTISSA_DIGITS) or len(exponent) > 3:   # 9: the regexes' \d{1,9}
        return None
    return _Field(tuple(columns), len(shape.group(3) or ""), exponent,
                  -1 if shape.group(4) == "-" else 1, -1 if shape.group(1) == "-" else 1)


class _Template:
    """One line shape (see above). Byte classes: fixed; digit wildcard; and *pad*: the spaces that
    right-align a number after ``:`` ``[`` ``(`` or ``,`` together with all but the last digit of its
    integer part (so ``[   0/1251``, ``[  50/1251`` and ``[1000/1251`` are one shape). Pad bytes hold
    spaces and then digits, which is exactly what the reference regexes' ``\\s*`` before a number
    accept; a space reads as a leading zero."""

    __slots__ = ("width", "pattern", "add", "mask", "checked_words", "pads", "pad_pairs", "fields", "consts", "usable",
                 "tokens", "_plans")

    def __init__(self, raw: bytes, spans: _Spans, consts: dict[str, Any], text: str):
        self.width = (len(raw) + 7) // 8 * 8
        wild = np.zeros(self.width, bool)
        for run in _DIGIT_RUN.finditer(text):
            before = text[run.start() - 1] if run.start() else " "
            if not (before.isalpha() or before in "@_"):
                wild[run.start():run.end()] = True
        self.pads: list[tuple[int, ...]] = []
        pad_before: dict[int, tuple[int, ...]] = {}     # first digit column -> the spaces before it
        for run in _DIGIT_RUN.finditer(text):
            start, end = run.span()
            if not wild[start] or (start and text[start - 1] == "."):
                continue                                   # a fraction, or a word's digits
            opening = start
            while opening and text[opening - 1] == " ":
                opening -= 1
            if opening and text[opening - 1] not in ":[(,":
                continue
            columns = tuple(range(opening, end - 1))      # the last integer digit is always a digit
            if columns:
                self.pads.append(columns)
            pad_before[start] = tuple(range(opening, start))
        pattern = np.zeros(self.width, np.uint8)
        pattern[:len(raw)] = np.frombuffer(raw, np.uint8)
        pattern[wild] = 48
        # x = line ^ pattern is 0 on every good fixed byte and 0..9 on every good wildcard byte;
        # x + 0x76 sets bit 7 of a wildcard byte exactly when x > 9 (x > 0x7f has bit 7 already).
        # Pad bytes are left out here (mask 0) and checked column by column in read().
        mask = np.zeros(self.width, np.uint8)
        mask[:len(raw)] = 0xFF
        mask[wild] = 0x80
        for columns in self.pads:
            mask[list(columns)] = 0
        self.pattern = pattern.view("<u8")
        self.add = np.where(wild, 0x76, 0).astype(np.uint8).view("<u8")
        self.mask = mask.view("<u8")
        self.checked_words = [k for k in range(len(self.mask)) if self.mask[k]]
        # (column, next column) inside one pad: a digit must not be followed by a space
        self.pad_pairs = [(a, b) for columns in self.pads for a, b in zip(columns, columns[1:])]
        self.fields = {name: (_field(text, span, pad_before.get(span[0], ()), name in _INT_FIELDS) if span else None)
                       for name, span in spans.items()}
        self.usable = all(field is not None for name, field in self.fields.items() if spans[name])
        self.consts = consts
        self.tokens = {name: text[span[0]:span[1]] for name, span in spans.items() if span}
        self._plans: dict[frozenset[str], tuple] = {}

    def _plan(self, skip: frozenset[str]) -> tuple:
        """Which byte columns to fetch (pad columns first), and where each field's digits are."""
        plan = self._plans.get(skip)
        if plan is None:
            fields = {name: (None if name in skip else field) for name, field in self.fields.items()}
            pad_columns = [c for columns in self.pads for c in columns]
            digit_columns = sorted({c for f in fields.values() if f for c in f.columns + f.exponent_columns} - set(pad_columns))
            columns = pad_columns + digit_columns
            position = {column: i for i, column in enumerate(columns)}
            words = np.array([c // 8 for c in columns], np.intp)
            offsets = np.array([c % 8 for c in columns], np.intp)
            before = np.array([position[a] for a, _ in self.pad_pairs], np.intp)
            after = np.array([position[b] for _, b in self.pad_pairs], np.intp)
            reads = {name: (field, [position[c] for c in field.columns], [position[c] for c in field.exponent_columns])
                     if field and field.constant is None else field for name, field in fields.items()}
            plan = self._plans[skip] = (words, offsets, len(pad_columns), before, after, reads)
        return plan

    def match(self, words: np.ndarray) -> np.ndarray:
        """Lines whose fixed bytes equal the template's and that have a digit at every wildcard.
        ``words``: the lines as 64-bit words, one row per word position (so each numpy call runs
        over all lines at once). A carry out of a bad wildcard byte can only flag a bad line."""
        bad = np.zeros(words.shape[1], np.uint64)
        for k in self.checked_words:
            x = words[k] ^ self.pattern[k]
            if self.add[k]:
                x |= x + self.add[k]
            x &= self.mask[k]
            bad |= x
        return bad == 0

    def read(self, words: np.ndarray, skip: frozenset[str] = frozenset()) -> tuple[dict[str, np.ndarray | None], np.ndarray]:
        """Values of the fields (but ``skip``) for matching lines (``words`` as in :meth:`match`), and
        which lines also pass the pad check (spaces, then digits)."""
        word_index, byte_index, pads, before, after, reads = self._plan(skip)
        n = words.shape[1]
        as_bytes = words.view(np.uint8).reshape(words.shape[0], n, 8)   # [word, line, byte in word]
        table = as_bytes[word_index, :, byte_index]                      # [column, line]
        good = np.ones(n, bool)
        if pads:
            pad = table[:pads]
            space, digit = pad == 32, (pad - np.uint8(48)) < 10
            good &= (space | digit).all(axis=0)
            if len(before):
                good &= ~(digit[before] & space[after]).any(axis=0)
        digits = table & np.uint8(15)                              # '0'-'9' -> 0-9 and a pad space -> 0
        out: dict[str, np.ndarray | None] = {}
        for name, read in reads.items():
            if read is None:
                out[name] = None
            elif isinstance(read, _Field):                         # nan / inf
                out[name] = np.full(n, read.constant)
            else:
                field, mantissa_rows, exponent_rows = read
                exact = np.int64 if name in _INT_FIELDS else np.float64    # both exact below 2**53
                mantissa = _horner(digits, mantissa_rows, n, exact)
                if name in _INT_FIELDS:
                    out[name] = mantissa
                    continue
                power = -field.fraction
                if exponent_rows:
                    power = power + field.exponent_sign * _horner(digits, exponent_rows, n, np.int64)
                    good &= np.abs(power) <= 22
                if np.ndim(power) == 0:
                    value = mantissa * _POW10[power] if power >= 0 else mantissa / _POW10[-power]
                else:
                    scale = _POW10[np.clip(np.abs(power), 0, 22)]
                    value = np.where(power >= 0, mantissa * scale, mantissa / scale)
                out[name] = -value if field.sign < 0 else value
        return out, good


def _horner(digits: np.ndarray, rows: list[int], n: int, dtype: type) -> np.ndarray:
    """The decimal number whose digits are ``digits[rows]``, most significant first (exact in
    ``dtype`` below 2**53). Two digits per step; a pair fits the uint8 digit rows."""
    value = digits[rows[0]].astype(dtype)
    rest = rows[1:]
    if len(rest) % 2:
        value *= 10
        value += digits[rest[0]]
        rest = rest[1:]
    for high, low in zip(rest[::2], rest[1::2]):
        value *= 100
        value += digits[high] * np.uint8(10) + digits[low]
    return value


# ---------------------------------------------------------------------------------------------
# Version evidence (§14). Versions are tuples; None = unbounded.

_V = tuple[int, int, int]
_NO_UPPER: _V = (99, 0, 0)


def _version_text(low: _V | None, high: _V | None) -> str | None:
    fmt = lambda v: ".".join(map(str, v))  # noqa: E731
    if low and high:
        return fmt(low) if low == high else f"{fmt(low)}-{fmt(high)}"
    if low:
        return f">={fmt(low)}"
    return f"<={fmt(high)}" if high else None


def _narrow(evidence: list[tuple[_V | None, _V | None]]) -> tuple[_V | None, _V | None]:
    """Intersect version ranges in order of reliability; a range that contradicts the ones
    before it (timm forks mix eras) is ignored."""
    low, high = (0, 0, 0), _NO_UPPER
    for lo, hi in evidence:
        new_low, new_high = max(low, lo or low), min(high, hi or high)
        if new_low <= new_high:
            low, high = new_low, new_high
    return (low if low != (0, 0, 0) else None), (high if high != _NO_UPPER else None)


# ---------------------------------------------------------------------------------------------
# The parser state

_LAYOUT_SAMPLES = 256
_FREQUENT = (b"Current checkpoints:",)   # same first 4 bytes (see _first_label)


def _significant_digits(token: str) -> int:
    mantissa = token.lstrip("+-").lower().split("e")[0].replace(".", "")
    return len(mantissa.lstrip("0")) if mantissa.isdigit() else 0


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text.strip()


def _split_top_level(text: str) -> list[str]:
    """Split ``a: 1, b: (2, 3)`` at commas that are not inside brackets."""
    parts, depth, current = [], 0, []
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth <= 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in (p.strip() for p in parts) if part]


def _labelled_lines(data: bytes, starts: np.ndarray, candidates: np.ndarray,
                    specs: list[tuple[str, int, tuple[bytes, ...]]]) -> dict[str, np.ndarray]:
    """For each (name, column, labels): which candidate lines hold one of the labels at that column.
    The first bytes at a column are fetched once for all lines (fetching is what costs: a cache
    miss per line) and compared as 64-bit words."""
    found = {name: np.zeros(len(starts), bool) for name, _, _ in specs}
    for column in sorted({column for _, column, _ in specs}):
        at_column = [(name, labels) for name, at, labels in specs if at == column]
        width = -(-max(len(label) for _, labels in at_column for label in labels) // 8) * 8
        rows = np.flatnonzero(candidates & (starts + column + width <= len(data)))   # the last bytes: per line
        if not len(rows):
            continue
        view = np.ndarray((len(data) - width + 1,), f"S{width}", data, 0, (1,))
        words = view[starts[rows] + column].view("<u8").reshape(len(rows), width // 8)
        for name, labels in at_column:
            hit = np.zeros(len(rows), bool)
            for label in labels:
                padded = label.ljust(width, b"\0")
                match = np.ones(len(rows), bool)
                for k in range(0, len(label), 8):
                    mask = np.uint64((1 << (8 * min(8, len(label) - k))) - 1)
                    match &= (words[:, k // 8] & mask) == np.uint64(int.from_bytes(padded[k:k + 8], "little"))
                hit |= match
            found[name][rows[hit]] = True
    return found


def _first_label(data: bytes, begin: int, end: int, labels: tuple[bytes, ...]) -> int:
    """Offset of the first occurrence of any of ``labels`` in data[begin:end] (they share their
    first 4 bytes)."""
    stem = labels[0][:4]
    at = data.find(stem, begin, end)
    while at >= 0:
        if any(data.startswith(label, at, end) for label in labels):
            return at
        at = data.find(stem, at + 1, end)
    return -1


class _Parser:
    def __init__(self, path: str, fast: bool = True):
        self.path, self.fast = path, fast
        self.issues: list[IngestIssue] = []
        # Train/Test rows, stored in line order block by block; a block's rows read line by line
        # wait in ``pending`` and are merged with its bulk rows when the block is done
        self.rows: dict[str, _Growing] = {kind.name: _Growing(kind.columns) for kind in (_TRAIN, _TEST)}
        self.pending: dict[str, list[tuple[int, dict[str, Any]]]] = {kind.name: [] for kind in (_TRAIN, _TEST)}
        self.info: dict[str, Any] = {}
        self.info_refs: dict[str, SourceRef] = {}
        self.lr_calc: LrCalc | None = None
        self.events: list[Event] = []
        self.markers: list[tuple[int, str, dict[str, Any]]] = []   # restart markers: (line, kind, data)
        self.skipped_eval: list[int] = []
        self.best: list[tuple[int, float, int]] = []
        self.evidence: list[tuple[_V | None, _V | None]] = []
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
        self.templates: dict[tuple[str, bytes], _Template | None] = {}
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
    def feed(self, block: _Block) -> None:
        first_line = self.next_line
        if block.skipped:
            self.long_line(first_line, block.offset)
            self.next_line += 1
            return
        data, begin, end = block.data, block.begin, block.end
        if block.unterminated:
            self.next_line += 1
            self._last_line(self._decode(data[:-1], first_line, block.offset), first_line)
            self._store(_TRAIN, [], first_line)
            self._store(_TEST, [], first_line)
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
            for name, labels in ((_TRAIN.name, (b"Train:",)), (_TEST.name, (b"Test: ", b"Test (EMA): ")),
                                 ("frequent", _FREQUENT)):
                first = _first_label(data, begin, end, labels)
                if first >= 0:     # a log's prefix, if any, has a constant width
                    specs.append((name, first - max(data.rfind(b"\n", begin, first) + 1, begin), labels))
        found = _labelled_lines(data, starts, ~handled, specs)
        handled |= found["entry"]
        if "frequent" in found:
            handled[np.flatnonzero(found["frequent"])[1:]] = True
        pieces: dict[str, list] = {_TRAIN.name: [], _TEST.name: []}
        if self.fast:
            for kind in (_TRAIN, _TEST):
                if kind.name in found:
                    done, pieces[kind.name] = self._bulk(kind, data, starts, lengths,
                                                         np.flatnonzero(found[kind.name] & ~handled))
                    handled |= done
        for row in np.flatnonzero(~handled).tolist():
            line = first_line + row
            text = self._decode(data[starts[row]:ends[row]], line, block.offset + int(starts[row]) - begin)
            self.line(text, line)
        for kind in (_TRAIN, _TEST):
            self._store(kind, pieces[kind.name], first_line)

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

    def _bulk(self, kind: _Kind, data: bytes, starts: np.ndarray, lengths: np.ndarray,
              rows: np.ndarray) -> tuple[np.ndarray, list[tuple[np.ndarray, dict[str, np.ndarray | None]]]]:
        """Parse ``rows`` with templates, one line length at a time. Returns a mask of the rows done
        and their values, as (rows, values) pieces."""
        done = np.zeros(len(starts), bool)
        if not len(rows):
            return done, []
        skip = frozenset({"pct"}) if self.pct_rows > _PCT_ROWS else frozenset()   # pct only votes on the layout
        pieces: list[tuple[np.ndarray, dict[str, np.ndarray | None]]] = []
        # lengths fit 16 bits here (longer lines were dropped), which numpy sorts by radix
        rows = rows[np.argsort(np.minimum(lengths[rows], 0xFFFF).astype(np.uint16), kind="stable")]
        for group in np.split(rows, np.flatnonzero(np.diff(lengths[rows])) + 1):
            width = int(lengths[group[0]])
            padded = (width + 7) // 8 * 8
            group = group[starts[group] + padded <= len(data)]   # the 8-byte words stay inside the block
            if len(group) < 2:    # a shape of its own is cheaper line by line
                continue
            view = np.ndarray((len(data) - padded + 1,), f"S{padded}", data, 0, (1,))
            for _ in range(_MAX_TEMPLATES):
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
                        pieces.append((hit, values))
                        done[hit] = True
                        self._samples(kind, template.tokens, template.consts, len(hit))
                        if kind is _TRAIN and values.get("pct") is not None:
                            self.percent.append(np.vstack((values["idx"], values["total"], values["pct"])))
                            self.pct_rows += len(hit)
                group = group[:0] if every else group[~match]
        return done, pieces

    def _store(self, kind: _Kind, pieces: list[tuple[np.ndarray, dict[str, np.ndarray | None]]], first_line: int) -> None:
        """Append one block's rows (bulk pieces and the lines read one by one) in line order."""
        pending = self.pending[kind.name]
        if pending:
            values = {name: np.array([record[name] for _, record in pending],
                                     np.int64 if name in _INT_FIELDS else np.float64) for name in kind.columns[1:]}
            pieces = [*pieces, (np.array([line for line, _ in pending], np.int64) - first_line, values)]
            pending.clear()
        if not pieces:
            return
        rows = np.concatenate([piece[0] for piece in pieces]) if len(pieces) > 1 else pieces[0][0]
        order = np.argsort(rows, kind="stable") if len(pieces) > 1 else None   # merges sorted runs
        store = self.rows[kind.name]
        store.append("line", first_line + rows, order)
        for name in kind.columns[1:]:
            parts = []
            for hit, values in pieces:
                column = values.get(name)
                if column is None:
                    column = np.full(len(hit), -1 if name in _INT_FIELDS else math.nan)
                    if name in kind.absent_as:
                        self.missing[kind.absent_as[name]].frombytes((first_line + hit).astype(np.int64).tobytes())
                parts.append(column)
            store.append(name, np.concatenate(parts) if len(parts) > 1 else parts[0], order)
        store.commit(len(rows))

    def _template(self, kind: _Kind, raw: bytes) -> _Template | None:
        """The template of a line, shared by every line of the same shape (digits aside)."""
        key = (kind.name, raw.translate(_DIGITS_AS_ZERO))
        if key in self.templates:
            return self.templates[key]
        template = None
        # a progress bar (\r) or colour codes need the per-line path; a template of such a line
        # is never built, so lines holding those bytes never match one
        if raw.isascii() and b"\r" not in raw and b"\x1b" not in raw:
            text = raw.decode("ascii")
            parsed = kind.spans(text)
            template = _Template(raw, parsed[0], parsed[1], text) if parsed else None
        if len(self.templates) < _MAX_CACHED_TEMPLATES:
            self.templates[key] = template
        return template

    def _samples(self, kind: _Kind, tokens: dict[str, str], consts: dict[str, Any], weight: int) -> None:
        """Evidence for the layout and version: the loss and Acc@1 number formats."""
        if kind is _TRAIN and "loss" in tokens and len(self.loss_samples) < _LAYOUT_SAMPLES:
            self.loss_samples.append((tokens["loss"], weight))
        if kind is _TEST:
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
            text = _ANSI.sub("", text)
        if "Train:" in text:
            if self.train_line(text, line):
                return True
            self.count_problem("Train: line", line)
        if "Test" in text and self.test_line(text, line):
            return True
        return self.message(text, line)

    def train_line(self, text: str, line: int) -> bool:
        return self._record(_TRAIN, text, line)

    def test_line(self, text: str, line: int) -> bool:
        return self._record(_TEST, text, line)

    def _record(self, kind: _Kind, text: str, line: int) -> bool:
        parsed = kind.spans(text)
        if parsed is None:
            return False
        spans, consts = parsed
        try:
            values = {name: _value(text[span[0]:span[1]], name) if span else None for name, span in spans.items()}
        except ValueError:   # a digit class that int()/float() reject (e.g. non-ASCII digits)
            return False
        if kind is _TRAIN and values["pct"] is not None and self.pct_rows < _PCT_ROWS:
            self.percent.append(np.array([[values["idx"]], [values["total"]], [values["pct"]]]))
            self.pct_rows += 1
        record: dict[str, Any] = {}
        for name in kind.columns[1:len(kind.columns) - len(kind.flags)]:
            if values[name] is None:
                record[name] = -1 if name in _INT_FIELDS else math.nan
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
        prefix = _PREFIX.match(text) if text[:1] in _PREFIX_STARTS else None
        level = prefix.group("level") if prefix else None
        body = text[prefix.end():] if prefix else text
        if self.traceback_line is not None and self._traceback_continues(body, line):
            return True
        for key, pattern, handler in _HANDLERS:
            if key in body:
                match = pattern.search(body)
                if match:
                    handler(self, match, line)
                    return True
        if level in ("WARNING", "ERROR", "CRITICAL"):
            self._warning_or_error(level, body.strip(), line)
            return True
        if line - self.data_config_line <= 8:
            return self._data_config_entry(body, line)
        return False

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
        self.info["data_config"] = {**self.info.get("data_config", {}), match.group(1): _literal(match.group(2))}
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
        return _assemble(self, n_lines)


# ---------------------------------------------------------------------------------------------
# Message handlers: (substring that must be present, pattern, action)


def _on_model(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("model", m.group(1), line)
    p.set_info("param_count", int(m.group(3)), line)
    p.evidence.append((None, (0, 4, 5)) if m.group(2) else ((0, 4, 9), None))
    p.markers.append((line, "start", {}))


def _on_single_device(p: _Parser, m: re.Match, line: int) -> None:
    if m.group(1):   # "on 1 device (cuda:0)" (v0.8.2+)
        device = m.group(1)
        p.set_info("device", device, line)
        p.evidence.append(((0, 8, 2), None) if ":" in device else ((0, 9, 16), None))
    else:            # "on 1 GPUs" (<= v0.6; printed whatever the device, so it names none)
        p.evidence.append((None, (0, 6, 13)))
    p.set_info("world_size", 1, line)
    p.set_info("distributed", False, line)
    p.markers.append((line, "start", {}))


def _on_distributed(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("world_size", int(m.group(3)), line)
    p.set_info("distributed", True, line)
    if m.group(4):
        p.set_info("device", m.group(4).rstrip("."), line)
    p.evidence.append((None, (0, 6, 13)) if m.group(1) == "GPU" else ((0, 8, 2), None))
    p.markers.append((line, "start", {}))


def _on_lr_calc(p: _Parser, m: re.Match, line: int) -> None:
    try:
        p.lr_calc = LrCalc(float(m.group(1)), float(m.group(2)), float(m.group(4)), m.group(5), p.ref(line))
    except ValueError:
        p.count_problem("learning-rate line", line)
        return
    p.evidence.append(((0, 9, 0), None) if m.group(3) else ((0, 8, 2), (0, 8, 17)))


def _on_data_config(p: _Parser, m: re.Match, line: int) -> None:
    p.data_config_line = line
    p.set_info("data_config", {}, line)


def _on_amp(p: _Parser, m: re.Match, line: int) -> None:
    text = m.group(0)
    if "APEX AMP" in text or "AMP on" in text:
        p.set_info("amp", "apex", line)
        p.set_info("train_dtype", "mixed", line)
    elif "native Torch AMP" in text:
        p.set_info("amp", "native", line)
        p.set_info("train_dtype", "mixed", line)
        p.evidence.append((None, (1, 0, 22)))
    else:
        p.set_info("amp", "off", line)
        dtype = m.group(1)
        if dtype:
            p.set_info("train_dtype", dtype.removeprefix("torch."), line)
            p.evidence.append(((1, 0, 13), None) if dtype.startswith("torch.") else (None, (1, 0, 12)))
        else:
            p.set_info("train_dtype", "float32", line)


def _on_optimizer(p: _Parser, m: re.Match, line: int) -> None:
    params = {}
    for part in _split_top_level(m.group(3)):
        key, _, value = part.partition(":")
        params[key.strip()] = _literal(value)
    p.set_info("optimizer", {"class": m.group(1), "name": m.group(2), "params": params}, line)
    p.evidence.append(((1, 0, 12), None))


def _on_scheduled(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("scheduled_epochs", int(m.group(1)), line)
    unit = re.search(r"LR stepped per (epoch|update)", m.group(3))
    if unit:
        p.set_info("lr_step_unit", unit.group(1), line)
    if m.group(2):            # "(epochs + cooldown_epochs)" explanation: v1.0.12+
        p.evidence.append(((1, 0, 12), None))
    elif unit:                # "N. LR stepped per epoch.": v0.8.2-v1.0.11
        p.evidence.append(((0, 8, 2), (1, 0, 11)))
    elif not m.group(3).strip(" ."):
        p.evidence.append((None, (0, 6, 13)))


def _on_task(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("task_criterion", m.group(1), line)
    p.evidence.append(((1, 0, 23), None))


def _on_pretrained(p: _Parser, m: re.Match, line: int) -> None:
    kind = {"Hugging Face hub": "hf-hub", "url": "url", "file": "file"}.get(m.group(1), m.group(1))
    p.set_info("pretrained_source", f"{kind}:{m.group(2)}", line)


def _on_loaded_checkpoint(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("resume_checkpoint", m.group(1), line)
    p.set_info("resume_epoch", int(m.group(2)), line)
    p.markers.append((line, "resume", {"checkpoint": m.group(1), "checkpoint_epoch": int(m.group(2))}))


def _on_restoring(p: _Parser, m: re.Match, line: int) -> None:
    p.markers.append((line, "resume", {}))


def _on_state_dict(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("loaded_state_dict", m.group(1), line)


def _on_missing_keys(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("pretrained_missing_keys", tuple(key.strip() for key in m.group(1).split(",") if key.strip()), line)


def _on_best(p: _Parser, m: re.Match, line: int) -> None:
    try:
        value = float(m.group(1))
    except ValueError:
        p.count_problem("best-metric line", line)
        return
    epoch = int(m.group(2))
    p.best.append((line, value, epoch))
    p.set_info("best_metric", value, line)
    p.set_info("best_epoch", epoch, line)


def _on_skip_eval(p: _Parser, m: re.Match, line: int) -> None:
    p.skipped_eval.append(line)


def _on_flag(key: str, value: Any, evidence: tuple[_V | None, _V | None] | None = None):
    def handler(p: _Parser, m: re.Match, line: int) -> None:
        p.set_info(key, value if value is not None else m.group(1), line)
        if evidence:
            p.evidence.append(evidence)
    return handler


def _on_ddp(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("ddp", "apex" if m.group(1) == "NVIDIA APEX" else "native", line)
    p.evidence.append((None, (1, 0, 22)))


def _on_traceback(p: _Parser, m: re.Match, line: int) -> None:
    p.traceback_line = line


def _on_py_warning(p: _Parser, m: re.Match, line: int) -> None:
    p.warning(m.group("category"), m.group("message").strip(), line)


def _on_timm_warning(p: _Parser, m: re.Match, line: int) -> None:
    p.warning("WARNING", m.group(1).strip(), line)


def _on_error(p: _Parser, m: re.Match, line: int) -> None:
    p.crash("crash", m.group(0).strip(), line)


def _on_oom(p: _Parser, m: re.Match, line: int) -> None:
    p.crash("oom", m.string.strip(), line)


def _on_num_classes(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("num_classes", int(m.group(1)), line)


def _on_known(p: _Parser, m: re.Match, line: int) -> None:
    """Lines that carry nothing we keep but are timm's own (so not 'unrecognised')."""


_HANDLERS: tuple[tuple[str, re.Pattern, Callable[[_Parser, re.Match, int], None]], ...] = (
    ("Current checkpoints", re.compile(r"Current checkpoints:"), _on_known),
    ("Traceback (most recent", re.compile(r"Traceback \(most recent call last\)"), _on_traceback),
    ("Learning rate (", re.compile(
        rf"Learning rate \(({_NUM})\) calculated from base learning rate \(({_NUM})\) and (effective )?global batch size "
        rf"\(({_NUM})\) with (\w+) scaling"), _on_lr_calc),
    ("created, param count", re.compile(r"Model (\S+) created, param count:( )?\s*(\d{1,15})"), _on_model),
    ("Data processing configuration", re.compile(r"Data processing configuration"), _on_data_config),
    ("Training with a single process", re.compile(
        r"Training with a single process on \d+ (?:device \(([^)]*)\)|GPUs?)"), _on_single_device),
    ("Training in distributed mode", re.compile(
        r"Training in distributed mode with multiple processes, 1 (GPU|device) per process\.\s*"
        r"Process (\d+), total (\d{1,9})(?:, device (\S+))?"), _on_distributed),
    ("AMP", re.compile(r"Using NVIDIA APEX AMP|Using native Torch AMP|AMP not enabled\. Training in ([\w.]+?)\.?\s*$"
                       r"|NVIDIA APEX (?:not )?installed\. AMP (?:on|off)|AMP not enabled"), _on_amp),
    ("optimizer:", re.compile(r"Created (\w+) \(([^)]*)\) optimizer:\s*(.*)$"), _on_optimizer),
    ("Scheduled epochs:", re.compile(r"Scheduled epochs: (\d{1,9})( \([^)]*\))?(.*)$"), _on_scheduled),
    ("ClassificationTask", re.compile(r"ClassificationTask: criterion=(\w+)"), _on_task),
    ("Loading pretrained weights from", re.compile(
        r"Loading pretrained weights from (Hugging Face hub|url|file) \((.+)\)"), _on_pretrained),
    ("Loaded checkpoint", re.compile(r"Loaded checkpoint '(.*)' \(epoch (\d{1,9})\)"), _on_loaded_checkpoint),
    ("Restoring ", re.compile(r"Restoring (?:model|optimizer|Optimizer|AMP loss scaler|NVIDIA AMP) state"), _on_restoring),
    ("Loaded state_dict", re.compile(r"Loaded state_dict(?:_ema)? from checkpoint '(.*)'"), _on_state_dict),
    ("Missing keys", re.compile(r"Missing keys \(([^)]*)\) discovered while loading pretrained weights"), _on_missing_keys),
    ("Best metric:", re.compile(rf"\*\*\* Best metric: ({_NUM}) \(epoch (\d{{1,9}})\)"), _on_best),
    ("Skipping eval", re.compile(r"Skipping eval and checkpointing"), _on_skip_eval),
    ("Synchronized BatchNorm", re.compile(r"Converted model to use Synchronized BatchNorm"), _on_flag("sync_bn", True)),
    ("DistributedDataParallel", re.compile(r"Using (native Torch|NVIDIA APEX|torch) DistributedDataParallel"), _on_ddp),
    ("Preparing task for distributed", re.compile(r"Preparing task for distributed training"),
     _on_flag("ddp", "task", ((1, 0, 23), None))),
    ("Distributing BatchNorm", re.compile(r"Distributing BatchNorm running means and vars"), _on_flag("dist_bn", True)),
    ("Compiling task", re.compile(r"Compiling task(?: components)? with backend=([^,\s]+)"), _on_flag("compile_backend", None)),
    ("NaFlex", re.compile(r"Using NaFlex loader"), _on_flag("naflex", True)),
    ("KD teacher", re.compile(r"Creating KD teacher model: '?([^']+)'?"), _on_flag("kd_teacher", None)),
    ("Warning: ", _PY_WARNING, _on_py_warning),
    ("WARNING:", re.compile(r"^\s*WARNING:\s*(.*)$"), _on_timm_warning),
    ("ERROR:", re.compile(r"^\s*ERROR:\s*.*$"), _on_error),
    ("out of memory", re.compile(r"out of memory"), _on_oom),
    ("OutOfMemoryError", re.compile(r"OutOfMemoryError"), _on_oom),
    ("num_classes", re.compile(r"num_classes\s*[=:]\s*(\d{1,9})\b"), _on_num_classes),
    ("--result", re.compile(r"^--result\s*$"), _on_known),
)


# ---------------------------------------------------------------------------------------------
# Assembly: arrays -> frames, segments, events, layout and version


class _Growing:
    """Columns appended to block by block: ``append`` every column of a block's rows, then
    ``commit``. They grow in place (``ndarray.resize`` reallocates; for large arrays the C library
    remaps pages rather than copying), so no per-block pieces are kept and nothing is joined at the
    end; ``result`` trims them to their exact size the same way. No view of them may be held while
    they grow (hence ``refcheck=False`` is safe: only temporaries are taken)."""

    def __init__(self, names: tuple[str, ...]):
        self.arrays = {name: np.empty(0, np.int64 if name in _INT_FIELDS else np.float64) for name in names}
        self.size = 0

    def append(self, name: str, values: np.ndarray, order: np.ndarray | None) -> None:
        array_, need = self.arrays[name], self.size + len(values)
        if need > len(array_):
            array_.resize(max(need, len(array_) * 3 // 2 + 4096), refcheck=False)
        target = array_[self.size:need]
        if order is None:
            target[...] = values
        else:
            np.take(values, order, out=target)

    def commit(self, count: int) -> None:
        self.size += count

    def result(self) -> dict[str, np.ndarray]:
        for array_ in self.arrays.values():
            array_.resize(self.size, refcheck=False)
        return self.arrays


def _columns(rows: _Growing) -> dict[str, np.ndarray]:
    """One array per field, in line order (it is stored so; a hostile input is checked anyway)."""
    out = rows.result()
    order = None
    if len(out["line"]) > 1 and (np.diff(out["line"]) < 0).any():
        order = np.argsort(out["line"], kind="stable")
        for key in out:
            out[key] = out[key][order]
    return out


def _segments(p: _Parser, train: dict[str, np.ndarray], test: dict[str, np.ndarray]):
    """Restart boundaries (first line of each new segment) and one resume event per boundary."""
    bounds: list[int] = []
    clusters: list[list[tuple[int, str, dict]]] = []
    seen_activity = 0
    for marker in sorted(p.markers, key=lambda item: item[0]):
        # Train/Test lines before the marker (both arrays are sorted)
        before = int(np.searchsorted(train["line"], marker[0]) + np.searchsorted(test["line"], marker[0]))
        if before > seen_activity:
            bounds.append(marker[0])
            clusters.append([marker])
            seen_activity = before
        elif clusters and before == seen_activity and bounds:
            clusters[-1].append(marker)
    reasons: dict[int, str] = {}
    epoch, idx, lines = train["epoch"], train["idx"], train["line"]
    if len(lines) > 1:
        back = np.flatnonzero((epoch[1:] < epoch[:-1]) | ((epoch[1:] == epoch[:-1]) & (idx[1:] < idx[:-1]))) + 1
        known = np.array(bounds, np.int64)
        # a message boundary between the two Train lines already accounts for the restart
        marked = np.searchsorted(known, lines[back], "right") != np.searchsorted(known, lines[back - 1], "right")
        for k in back[~marked].tolist():
            reasons[int(lines[k])] = (f"the epoch counter goes back from {epoch[k - 1]} [{idx[k - 1]}] "
                                      f"to {epoch[k]} [{idx[k]}]")
        bounds = sorted(set(bounds) | set(reasons))
    events = []
    cluster_at = {cluster[0][0]: cluster for cluster in clusters}
    for segment, line in enumerate(bounds, start=1):
        first_epoch = _first_epoch_from(train, line)
        data: dict[str, Any] = {"segment": segment}
        source_line = line
        if line in cluster_at:
            resume = [m for m in cluster_at[line] if m[1] == "resume"]
            detail = next((m for m in resume if m[2]), None)
            if detail:
                data.update(detail[2])
                source_line = detail[0]
                text = f"resumed from {detail[2]['checkpoint']} (epoch {detail[2]['checkpoint_epoch']})"
            elif resume:
                text = "resumed from a checkpoint"
            else:
                text = "a new run starts (log appended)"
        else:
            text = reasons.get(line, "training restarts")
        where = f"; training continues at epoch {first_epoch}" if first_epoch is not None else ""
        events.append(Event("resume", f"{text} at line {line}{where}", p.ref(source_line), first_epoch, data))
    return np.array(bounds, np.int64), events


def _first_epoch_from(train: dict[str, np.ndarray], line: int) -> int | None:
    k = int(np.searchsorted(train["line"], line))
    return int(train["epoch"][k]) if k < len(train["line"]) else None


def _epoch_before(train: dict[str, np.ndarray], lines: np.ndarray) -> np.ndarray:
    """Index of the last Train row before each line (-1: none)."""
    return np.searchsorted(train["line"], lines) - 1


def _evals(p: _Parser, test: dict[str, np.ndarray], train: dict[str, np.ndarray],
           train_segment: np.ndarray, bounds: np.ndarray) -> pd.DataFrame:
    lines = test["line"]
    if not len(lines):
        return _empty_evals()
    segment = np.searchsorted(bounds, lines, side="right")
    before = _epoch_before(train, lines)
    new_block = np.ones(len(lines), bool)
    new_block[1:] = ((test["ema"][1:] != test["ema"][:-1]) | (test["last"][1:] != test["last"][:-1])
                     | (test["idx"][1:] <= test["idx"][:-1]) | (before[1:] != before[:-1])
                     | (segment[1:] != segment[:-1]))
    block_start = np.flatnonzero(new_block)
    block_end = np.append(block_start[1:], len(lines)) - 1
    train_row = before[block_start]
    has_epoch = (train_row >= 0)
    has_epoch[has_epoch] &= train_segment[train_row[has_epoch]] == segment[block_start[has_epoch]]
    for k in np.flatnonzero(~has_epoch)[:MAX_LISTED_ISSUES].tolist():
        p.issue("validation block without Train lines before it in the same run; its epoch is unknown", int(lines[block_start[k]]))
    cut = test["idx"][block_end] != test["last"][block_end]
    for k in np.flatnonzero(cut)[:MAX_LISTED_ISSUES].tolist():
        row = block_end[k]
        p.issue(f"validation block cut at [{test['idx'][row]}/{test['last'][row]}]; its last running average is used", int(lines[row]))
    keep_start, keep_end = block_start[has_epoch], block_end[has_epoch]
    frame = pd.DataFrame({
        "epoch": train["epoch"][train_row[has_epoch]].astype(np.int64),
        "pass": pd.Series(np.where(test["ema"][keep_end] == 1, "ema", "model"), dtype="str"),
        "eval_loss": test["loss"][keep_end],
        "eval_top1": test["top1"][keep_end],
        "eval_top5": test["top5"][keep_end],
        "segment": segment[keep_start].astype(np.int64),
        "src_line": lines[keep_end].astype(np.int64),
    }, copy=False)
    return frame


def _empty_evals() -> pd.DataFrame:
    return pd.DataFrame({
        "epoch": np.empty(0, np.int64), "pass": pd.Series([], dtype="str"), "eval_loss": np.empty(0), "eval_top1": np.empty(0),
        "eval_top5": np.empty(0), "segment": np.empty(0, np.int64), "src_line": np.empty(0, np.int64)})


def _layout(p: _Parser, train: dict[str, np.ndarray], message_range: tuple[_V | None, _V | None]) -> str | None:
    if not len(train["line"]):
        return None
    votes = {"A": 0, "B": 0, "CD": 0}
    for token, weight in p.loss_samples:
        sig = _significant_digits(token)
        decimals = len(token.split(".")[1]) if "." in token and "e" not in token.lower() else -1
        if decimals == 6 and sig >= 5:      # '{:>9.6f}'
            votes["A"] += weight
        elif sig == 4:                      # '{:#.4g}'
            votes["B"] += weight
        elif sig == 3:                      # '{:#.3g}'
            votes["CD"] += weight
    if not any(votes.values()):
        p.issue("Train lines have no Loss field in a known format; layout unknown", int(train["line"][0]))
        return None
    best = max(votes, key=votes.get)   # type: ignore[arg-type]
    if best != "CD":
        return best
    if p.percent:
        idx, total, pct = np.concatenate(p.percent, axis=1)
        usable = (total > 1) & (pct >= 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            old_rule = np.round(100.0 * idx / (total - 1))     # v0.9.0-1.0.7: idx / (N - 1)
            new_rule = np.round(100.0 * (idx + 1) / total)     # v1.0.8+: (idx + 1) / N
        telling = usable & (old_rule != new_rule)
        c_votes = int((telling & (pct == old_rule)).sum())
        d_votes = int((telling & (pct == new_rule)).sum())
        if c_votes != d_votes:
            return "C" if c_votes > d_votes else "D"
    low, high = message_range
    return "C" if high is not None and high <= (1, 0, 7) else "D"


_LAYOUT_RANGES: dict[str, tuple[_V | None, _V | None]] = {
    "A": (None, (0, 4, 12)), "B": ((0, 5, 0), (0, 8, 17)), "C": ((0, 9, 0), (1, 0, 7)), "D": ((1, 0, 8), None)}


def _throughput_bug(train: dict[str, np.ndarray], layout: str | None, message_range) -> bool:
    """v1.0.16-1.0.19 printed updates/s (= 1 / time) where samples/s belongs."""
    if layout != "D":
        return False
    low, high = message_range
    if (low and low > (1, 0, 19)) or (high and high < (1, 0, 16)):
        return False
    t, rate = train["batch_time"], train["rate"]
    valid = np.isfinite(t) & np.isfinite(rate) & (t > 0.001) & (rate > 0)
    if valid.sum() < 3:
        return False
    t, rate = t[valid], rate[valid]
    tolerance = 0.005 * t + 0.0005 * rate + 1e-3   # the printing precision of both numbers
    return bool((np.abs(rate * t - 1.0) <= tolerance).mean() >= 0.9)


def _nonfinite_events(p: _Parser, steps: pd.DataFrame, evals: pd.DataFrame) -> list[Event]:
    events = []
    checks = [(steps, column, None) for column in ("train_loss", "train_loss_avg", "lr")]
    p.missing.setdefault("eval_loss", array("q"))
    passes = evals["pass"].to_numpy(dtype=object)
    for name in ("model", "ema"):
        subset = evals[passes == name]
        checks += [(subset, column, name) for column in ("eval_loss", "eval_top1", "eval_top5")]
    for frame, column, pass_name in checks:
        values = frame[column].to_numpy()
        bad = ~np.isfinite(values)
        if len(p.missing[column]) and bad.any():
            absent = np.isin(frame["src_line"].to_numpy(), np.frombuffer(p.missing[column], np.int64))
            bad &= ~absent
        if not bad.any():
            continue
        first = frame[bad].groupby("segment", sort=True).head(1)
        for row in first.itertuples(index=False):
            value = getattr(row, column)
            label = column if pass_name is None else f"{column} ({pass_name} pass)"
            data = {"metric": column, "value": str(value), "segment": int(row.segment)}
            if pass_name:
                data["pass"] = pass_name
            events.append(Event("nonfinite", f"{label} is {value} at epoch {row.epoch}", p.ref(int(row.src_line)),
                                int(row.epoch), data))
    return events


def _assemble(p: _Parser, n_lines: int) -> ConsoleLog:
    train = _columns(p.rows["train"])
    test = _columns(p.rows["test"])
    message_range = _narrow(list(p.evidence))
    bounds, resume_events = _segments(p, train, test)
    train_segment = np.searchsorted(bounds, train["line"], side="right").astype(np.int64)
    layout = _layout(p, train, message_range)
    bug = _throughput_bug(train, layout, message_range)
    rate = train.pop("rate")
    if bug:
        batch = p.lr_calc.global_batch if p.lr_calc else math.nan
        rate *= batch
        p.issue("throughput printed as updates/s (timm 1.0.16-1.0.19 bug): samples_per_sec "
                + ("corrected with the global batch size from the LR line" if p.lr_calc else "unknown (NaN)"),
                int(train["line"][0]))
    evals = _evals(p, test, train, train_segment, bounds)
    steps = pd.DataFrame({
        "epoch": train["epoch"], "idx": train["idx"], "per_epoch": train["total"],
        "update": train["epoch"] * train["total"] + train["idx"],
        "train_loss": train["loss"], "train_loss_avg": train["loss_avg"], "lr": train["lr"],
        "samples_per_sec": rate, "batch_time": train["batch_time"], "data_time": train["data"],
        "segment": train_segment, "src_line": train["line"],
    }, copy=False)
    assert list(steps.columns) == list(STEP_COLUMNS) + ["segment", "src_line"]
    evidence = []
    if layout:
        evidence.append(_LAYOUT_RANGES[layout])
    if bug:
        evidence.append(((1, 0, 16), (1, 0, 19)))
    if p.prec_era:
        evidence.append((None, (0, 1, 20)))
    if p.test_decimals:
        four = sum(weight for decimals, weight in p.test_decimals if decimals == 4)
        three = sum(weight for decimals, weight in p.test_decimals if decimals == 3)
        if four != three:
            evidence.append((None, (0, 8, 17)) if four > three else ((0, 9, 0), None))
    version = _version_text(*_narrow(evidence + p.evidence))
    events = resume_events + _events(p, train, steps, evals)
    events.sort(key=lambda event: (event.source.line or 0, event.kind))
    return ConsoleLog(
        path=p.path, steps=steps, evals=evals,
        info=MappingProxyType(dict(p.info)), info_refs=MappingProxyType(dict(p.info_refs)),
        lr_calc=p.lr_calc, events=tuple(events), issues=tuple(p.issues), layout=layout,
        timm_version=version, n_lines=n_lines, throughput_bug=bug)


def _events(p: _Parser, train: dict[str, np.ndarray], steps: pd.DataFrame, evals: pd.DataFrame) -> list[Event]:
    events = _nonfinite_events(p, steps, evals)
    for line, value, epoch in p.best:
        events.append(Event("best_metric", f"best metric {value} at epoch {epoch}", p.ref(line), epoch,
                            {"value": value, "epoch": epoch}))
    for line in p.skipped_eval:
        row = int(np.searchsorted(train["line"], line)) - 1
        epoch = int(train["epoch"][row]) if row >= 0 else None
        events.append(Event("skipped_eval", "evaluation and checkpointing skipped (--val-interval)", p.ref(line), epoch))
    for (kind, text), (line, count) in p.crashes.items():
        extra = f" (x{count})" if count > 1 else ""
        events.append(Event(kind, text + extra, p.ref(line), _epoch_at(train, line), {"count": count}))
    for number, ((category, text), (line, count)) in enumerate(p.warnings.items()):
        if number == MAX_WARNINGS:
            p.issue(f"{len(p.warnings) - MAX_WARNINGS} more distinct warnings not listed", line)
            break
        extra = f" (x{count})" if count > 1 else ""
        events.append(Event("warning", f"{category}: {text}{extra}", p.ref(line), _epoch_at(train, line),
                            {"category": category, "count": count}))
    return events + p.events


def _epoch_at(train: dict[str, np.ndarray], line: int) -> int | None:
    row = int(np.searchsorted(train["line"], line)) - 1
    return int(train["epoch"][row]) if row >= 0 else None


# ---------------------------------------------------------------------------------------------
# Entry points


def parse_console_log(path: Path, display_path: str | None = None) -> ConsoleLog:
    """Parse a captured timm console log. Raises only :class:`IngestError`."""
    return _parse(Path(path), display_path)


def parse_console_stream(stream: BinaryIO, shown: str) -> ConsoleLog:
    """Parse a log from a seekable binary stream (an excerpt held in memory). Raises only IngestError."""
    return _guarded(lambda: _parse_stream(stream, shown, CHUNK_SIZE, True), shown)


def _parse(path: Path, display_path: str | None = None, *, chunk_size: int = CHUNK_SIZE,
           fast: bool = True) -> ConsoleLog:
    shown = display_path if display_path is not None else str(path)

    def parse() -> ConsoleLog:
        with open_input(path, shown) as stream:
            return _parse_stream(stream, shown, chunk_size, fast)

    return _guarded(parse, shown)


def _guarded(parse: Callable[[], ConsoleLog], shown: str) -> ConsoleLog:
    try:
        return parse()
    except IngestError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, AssertionError) as error:  # pragma: no cover
        # A parser bug must still not surface as a traceback; name it so tests can tell it apart.
        raise IngestError(f"internal parser error ({type(error).__name__}: {error})", SourceRef(shown)) from error


def _parse_stream(stream: BinaryIO, shown: str, chunk_size: int, fast: bool) -> ConsoleLog:
    parser = _Parser(shown, fast)
    head = stream.read(HEAD_SIZE)
    readinto: Callable[[memoryview], int] = stream.readinto  # type: ignore[assignment]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        stream.seek(2)
        readinto = _utf16_reader(stream, "utf-16-le" if head.startswith(codecs.BOM_UTF16_LE) else "utf-16-be")
        parser.issue("UTF-16 encoded log (a Windows shell redirect); transcoded to UTF-8, byte offsets refer to the UTF-8 text", 1)
    else:
        bad = _binary_offset(head)
        if bad is not None and b"\n" not in head[:bad]:
            # binary from the start; a text log with junk later keeps its good lines (and an issue)
            raise IngestError(f"not a text log: binary data at byte {bad}", SourceRef(shown, offset=bad))
        stream.seek(0)
    if not head:
        parser.issue("empty file", None)
        return parser.finish(0, False)
    unterminated = False
    for block in _line_blocks(readinto, chunk_size, MAX_LINE):
        parser.feed(block)
        unterminated = block.unterminated
    return parser.finish(parser.next_line - 1, unterminated)


def sniff_console_log(head: bytes) -> str | None:
    """``"timm console log"`` when the first bytes of a file look like timm train.py output."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        head = head.decode("utf-16", "replace").encode("utf-8")
    if not head or _binary_offset(head) is not None:
        return None
    text = head.decode("utf-8", "replace")
    if _TRAIN_HEAD.search(text) or _TEST_HEAD.search(text):
        return "timm console log"
    markers = ("created, param count", "Data processing configuration for current model", "Scheduled epochs:")
    return "timm console log" if sum(marker in text for marker in markers) >= 2 else None


# ---------------------------------------------------------------------------------------------
# The registered format (see ``formats.py``)

_EVAL_METRICS = ("eval_loss", "eval_top1", "eval_top5")
# The log prints 3-4 decimals: two numbers of one epoch "agree" at that precision. The train loss
# is a running mean at the epoch's last Train line, summary.csv's the epoch mean: looser.
_EVAL_TOLERANCE = 0.02
_TRAIN_LOSS_TOLERANCE = 0.05


def log_contribution(log: ConsoleLog, shown: str) -> Contribution:
    """A parsed log as epoch values, step rows, run-time values and events."""
    info = SourceInfo(shown, "console_log", _family_text(log), log.timm_version, _metrics(log),
                      _epoch_span(log), len(log.steps) + len(log.evals))
    if not (len(log.steps) or len(log.evals) or log.info):   # nothing but events and issues
        return Contribution(format="console_log", sources=(info,), events=log.events, issues=log.issues)
    steps = None
    if len(log.steps):
        steps = log.steps.copy()
        steps["src_file"] = log.path
    return Contribution(
        format="console_log", sources=(info,), epochs=_epoch_values(log), steps=steps,
        effective=_effective(log), scheduled_epochs=_scheduled(log), samples_per_step=_samples_per_step(log),
        timm_version=log.timm_version, records=len(log.evals), events=log.events, issues=log.issues,
    )


def _epoch_values(log: ConsoleLog) -> tuple[EpochValues, ...]:
    out: list[EpochValues] = []
    evals = log.evals
    if len(evals):
        # The latest validation of each (epoch, pass) wins: after a resume timm re-runs epochs.
        latest = evals.sort_values(["segment", "src_line"]).groupby(["epoch", "pass"], sort=False).tail(1)
        has_ema = "ema" in set(latest["pass"])
        per_pass, reported = [], []
        for record in latest.to_dict("records"):
            epoch, kind = int(record["epoch"]), str(record["pass"])
            ref = SourceRef(log.path, line=int(record["src_line"]))
            shows = (kind == "ema") if has_ema else (kind == "model")  # timm reports the EMA's eval when it has one
            for metric in _EVAL_METRICS:
                value = _as_float(record[metric])
                per_pass.append((f"{metric}_{'ema' if kind == 'ema' else 'model'}", epoch, value, ref))
                if shows:
                    reported.append((metric, epoch, value, ref))
        out += [EpochValues(per_pass, overwrite=True), EpochValues(reported, tolerance=_EVAL_TOLERANCE)]
    if len(log.steps):
        by_epoch = log.steps.sort_values(["segment", "src_line"]).groupby("epoch", sort=False)
        losses = [("train_loss", int(row.epoch), _as_float(row.train_loss_avg), SourceRef(log.path, line=int(row.src_line)))
                  for row in by_epoch.tail(1).itertuples(index=False)]
        lrs = [("lr", int(row.epoch), _as_float(row.lr), SourceRef(log.path, line=int(row.src_line)))
               for row in by_epoch.head(1).itertuples(index=False)]
        out += [EpochValues(losses, tolerance=_TRAIN_LOSS_TOLERANCE), EpochValues(lrs, only_new_column=True)]
    return tuple(out)


def _effective(log: ConsoleLog) -> tuple[Effective, ...]:
    out: list[Effective] = []
    if log.lr_calc is not None:
        calc = log.lr_calc
        out.append(Effective("lr", calc.lr, f"{calc.source}: computed by timm from lr_base {calc.lr_base:g} and "
                                            f"global batch {calc.global_batch:g} ({calc.scaling} scaling)"))
        out.append(Effective("global_batch", int(calc.global_batch), str(calc.source)))
    for key in ("world_size", "num_classes", "input_size", "model", "param_count"):
        if key in log.info and log.info[key] is not None:
            ref = log.info_refs.get(key)
            out.append(Effective(key, log.info[key], str(ref) if ref else log.path))
    data_config = log.info.get("data_config") or {}
    if data_config.get("input_size"):
        ref = log.info_refs.get("data_config")
        out.append(Effective("input_size", tuple(data_config["input_size"]), str(ref) if ref else log.path))
    return tuple(out)


def _scheduled(log: ConsoleLog) -> tuple[int, str] | None:
    value = log.info.get("scheduled_epochs")
    if not value:
        return None
    ref = log.info_refs.get("scheduled_epochs")
    return int(value), f"the log's 'Scheduled epochs' line ({ref or log.path})"


def _samples_per_step(log: ConsoleLog) -> float | None:
    """timm prints global samples/s = batch x world size / step time: their product is the samples
    of one optimizer step (the merge divides it by the per-process batch to find the world size)."""
    steps = log.steps
    if not len(steps):
        return None
    samples = (steps["samples_per_sec"] * steps["batch_time"]).to_numpy(dtype="float64")
    samples = samples[np.isfinite(samples) & (samples > 0)]
    return float(np.median(samples)) if samples.size >= 3 else None


def _metrics(log: ConsoleLog) -> tuple[str, ...]:
    metrics: list[str] = []
    if len(log.steps):
        metrics += ["train_loss (per step)", "lr (per step)"]
    if len(log.evals):
        for kind in sorted(set(log.evals["pass"])):
            metrics += [f"{m}_{kind}" for m in _EVAL_METRICS]
    return tuple(metrics)


def _family_text(log: ConsoleLog) -> str:
    return f"timm console log, Train layout {log.layout}" if log.layout else "timm console log, no Train lines"


def _epoch_span(log: ConsoleLog) -> tuple[int, int] | None:
    column = log.evals["epoch"] if len(log.evals) else log.steps.get("epoch", pd.Series(dtype=float))
    clean = pd.to_numeric(column, errors="coerce").dropna()
    return (int(clean.min()), int(clean.max())) if len(clean) else None


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class _ConsoleLogFormat:
    name = "console_log"
    kind: SourceKind = "console_log"

    def sniff(self, name: str, head: bytes) -> str | None:
        return sniff_console_log(head)

    def parse(self, path: Path, shown: str) -> Contribution:
        return log_contribution(parse_console_log(path, shown), shown)


CONSOLE_LOG = _ConsoleLogFormat()
