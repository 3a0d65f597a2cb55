"""The template engine: lines of one shape (digits aside) checked and read together with numpy.

Pure: it knows bytes, spans and numbers, nothing of the parser's state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from mnv4_postmortem.analyzer.ingest.console_log.grammar import INT_FIELDS, Spans

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
MAX_TEMPLATES = 64           # shapes tried per line length and block before the rest go line by line
MAX_CACHED_TEMPLATES = 4096
PCT_ROWS = 200_000           # Train lines whose percent field is read (enough to tell layout C from D)
DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")


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


class Template:
    """One line shape (see above). Byte classes: fixed; digit wildcard; and *pad*: the spaces that
    right-align a number after ``:`` ``[`` ``(`` or ``,`` together with all but the last digit of its
    integer part (so ``[   0/1251``, ``[  50/1251`` and ``[1000/1251`` are one shape). Pad bytes hold
    spaces and then digits, which is exactly what the reference regexes' ``\\s*`` before a number
    accept; a space reads as a leading zero."""

    __slots__ = ("width", "pattern", "add", "mask", "checked_words", "pads", "pad_pairs", "fields", "consts", "usable",
                 "tokens", "_plans")

    def __init__(self, raw: bytes, spans: Spans, consts: dict[str, Any], text: str):
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
        self.fields = {name: (_field(text, span, pad_before.get(span[0], ()), name in INT_FIELDS) if span else None)
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
                exact = np.int64 if name in INT_FIELDS else np.float64    # both exact below 2**53
                mantissa = _horner(digits, mantissa_rows, n, exact)
                if name in INT_FIELDS:
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



def labelled_lines(data: bytes, starts: np.ndarray, candidates: np.ndarray,
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


def first_label(data: bytes, begin: int, end: int, labels: tuple[bytes, ...]) -> int:
    """Offset of the first occurrence of any of ``labels`` in data[begin:end] (they share their
    first 4 bytes)."""
    stem = labels[0][:4]
    at = data.find(stem, begin, end)
    while at >= 0:
        if any(data.startswith(label, at, end) for label in labels):
            return at
        at = data.find(stem, at + 1, end)
    return -1
