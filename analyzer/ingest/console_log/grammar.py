"""The line grammar: the reference regexes of every Train/Test line and prefix, and where the numbers
of a Train/Test line are (the spans both parse paths read)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

# ---------------------------------------------------------------------------------------------
# Line grammar (the reference parser; the template path below reads what it would read)

NUM = r"[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|(?i:nan|inf(?:inity)?))"
TRAIN_HEAD = re.compile(r"Train:\s*(\d{1,9})\s*\[\s*(\d{1,9})\s*/\s*(\d{1,9})\s*(?:\(\s*(\d{1,9})\s*%\s*\))?\s*\]")
_LOSS = re.compile(rf"Loss:\s*({NUM})(?:\s*\(\s*({NUM})\s*\))?")
_TIME = re.compile(rf"Time(?:-Batch)?:\s*({NUM})s?,?\s*(?:({NUM})/s)?")
_LR = re.compile(rf"LR:\s*({NUM})")
_DATA = re.compile(rf"Data:\s*({NUM})")
TEST_HEAD = re.compile(r"Test( \(EMA\))?\s*:\s*\[\s*(\d{1,9})\s*/\s*(\d{1,9})\s*\]")
_ACC1 = re.compile(rf"(Acc|Prec)@1:\s*({NUM})(?:\s*\(\s*({NUM})\s*\))?")
_ACC5 = re.compile(rf"(?:Acc|Prec)@5:\s*({NUM})(?:\s*\(\s*({NUM})\s*\))?")
ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_TIMESTAMP = r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)?"
# Launcher and logging prefixes, stripped before messages are matched (Train/Test use search()).
PREFIX = re.compile(
    rf"^(?:\[rank\d+\]:\s?)?(?:{_TIMESTAMP}\s+-\s+[\w.]+:\s+\[\s*(?P<level>[A-Z]+)\s*\]\s+-\s|{_TIMESTAMP}\s+)?"
)
PREFIX_STARTS = frozenset("[0123456789")
PY_WARNING = re.compile(r"(?P<file>[^\s:]+\.py):(?P<lineno>\d+): (?P<category>\w*Warning): (?P<message>.*)")


# ---------------------------------------------------------------------------------------------
# Reference parsers: where the numbers of a Train/Test line are. The per-line path reads the values
# from these spans with float()/int(); the template path below reads the same spans in bulk.

Spans = dict[str, "tuple[int, int] | None"]


def _span(match: re.Match | None, group: int, shift: int) -> tuple[int, int] | None:
    if match is None or match.group(group) is None:
        return None
    return match.start(group) + shift, match.end(group) + shift


def _train_spans(text: str) -> tuple[Spans, dict[str, Any]] | None:
    head = TRAIN_HEAD.search(text)
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


def _test_spans(text: str) -> tuple[Spans, dict[str, Any]] | None:
    head = TEST_HEAD.search(text)
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
class LineKind:
    name: str
    spans: Callable[[str], tuple[Spans, dict[str, Any]] | None]
    fields: tuple[str, ...]
    absent_as: Mapping[str, str]      # field -> output column whose NaN means "not printed"
    flags: tuple[str, ...] = ()       # per-line constants of the line's shape (``Test (EMA)``: ema)
    sampled: tuple[str, ...] = ()     # read only for a sample of lines, kept apart (Train: pct)

    @property
    def columns(self) -> tuple[str, ...]:
        """What is stored per line."""
        return ("line", *(f for f in self.fields if f not in self.sampled), *self.flags)


TRAIN = LineKind("train", _train_spans, ("epoch", "idx", "total", "pct", "loss", "loss_avg", "batch_time", "rate", "lr", "data"),
               {"loss": "train_loss", "loss_avg": "train_loss_avg", "lr": "lr"}, sampled=("pct",))
TEST = LineKind("test", _test_spans, ("idx", "last", "loss", "top1", "top5"), {"top1": "eval_top1", "top5": "eval_top5"},
              ("ema",))
INT_FIELDS = frozenset({"line", "epoch", "idx", "total", "pct", "last", "ema"})


def read_value(token: str, name: str) -> float | int:
    return int(token) if name in INT_FIELDS else float(token)
