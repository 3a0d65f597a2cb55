"""A console log parsed as it grows (``watch``): whole lines are fed as they arrive, and a
:class:`ConsoleLog` of what was read so far can be asked for at any time, while parsing goes on."""

from __future__ import annotations

import copy

import numpy as np

from mnv4_postmortem.analyzer.ingest.console_log.assemble import Growing
from mnv4_postmortem.analyzer.ingest.console_log.data import ConsoleLog
from mnv4_postmortem.analyzer.ingest.console_log.parser import Parser
from mnv4_postmortem.analyzer.ingest.console_log.stream import Block


class GrowingLog:
    """One parser kept alive over a growing file, instead of re-reading the file at every poll.

    ``feed`` takes bytes of whole lines (each ending in ``\\n``) with their byte offset in the file;
    lines over ``MAX_LINE`` bytes are skipped with an issue, as in :func:`parse_console_log`."""

    def __init__(self, shown: str):
        self._parser = Parser(shown)

    def feed(self, data: bytes, offset: int) -> None:
        if data:
            self._parser.feed(Block(data, 0, len(data), offset))

    def note(self, message: str, line: int | None) -> None:
        """An issue about the file itself (e.g. it was truncated while followed)."""
        self._parser.issue(message, line)

    @property
    def train_rows(self) -> int:
        return self._parser.rows["train"].size

    @property
    def last_epoch(self) -> int:
        """The epoch of the last Train line (-1: none yet)."""
        train = self._parser.rows["train"]
        return int(train.arrays["epoch"][train.size - 1]) if train.size else -1

    @property
    def complete_validation_rows(self) -> int:
        """Test rows up to the last complete validation block (see :func:`_complete_test_rows`)."""
        return _complete_test_rows(self._parser.rows["test"])

    @property
    def events_seen(self) -> int:
        return len(self._parser.events)

    def best_metric_after_training(self) -> bool:
        """timm's ``*** Best metric`` line after the last Train line (a resumed run prints it at the end
        of every segment; only one with no training after it ends the run)."""
        parser = self._parser
        if not parser.best:
            return False
        train = parser.rows["train"]
        last_train = int(train.arrays["line"][train.size - 1]) if train.size else 0
        return parser.best[-1][0] > last_train

    def snapshot(self, n_lines: int) -> ConsoleLog:
        """The log as read so far (its first ``n_lines`` lines), leaving the live parser untouched:
        finishing appends issues and trims the row buffers, so it runs on a copy of every container
        (rows: the used part only; a validation block still being printed is left out)."""
        parser = self._parser
        clone = copy.copy(parser)
        for name, value in vars(parser).items():
            if isinstance(value, list):
                setattr(clone, name, [list(v) if isinstance(v, list) else v for v in value])
            elif isinstance(value, dict) and name != "rows":
                setattr(clone, name, {k: (list(v) if isinstance(v, list) else v[:] if hasattr(v, "tobytes") else v)
                                      for k, v in value.items()})
        rows = {}
        for kind, growing in parser.rows.items():
            size = _complete_test_rows(growing) if kind == "test" else growing.size
            copied = Growing(tuple(growing.arrays))
            copied.arrays = {k: np.array(a[:size]) for k, a in growing.arrays.items()}
            copied.size = size
            rows[kind] = copied
        clone.rows = rows
        return clone.finish(n_lines, False)


def _complete_test_rows(test: Growing) -> int:
    """Test rows up to the last complete validation block: a block still being printed (its last line
    ``[idx/last]`` has idx < last) would give the running average of part of the val set."""
    size = test.size
    idx, last = test.arrays["idx"], test.arrays["last"]
    if size and idx[size - 1] < last[size - 1]:
        done = np.flatnonzero(idx[:size] >= last[:size])
        # rows after the last finished block belong to the block in progress
        return int(done[-1]) + 1 if done.size else 0
    return size
