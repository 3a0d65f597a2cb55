"""Replaying a finished run as if timm were writing it: the console log a few lines at a time, and each
summary.csv row once the log has moved on to the next epoch (timm writes the row after the eval).
``args.yaml`` first, as timm writes it before training. Used by the watch tests and bench."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Iterator

_TRAIN_EPOCH = re.compile(rb"Train: (\d+) ")


def replay(src: Path, dst: Path, lines_per_step: int = 4) -> Iterator[int]:
    """Write ``src``'s files into ``dst`` step by step; yields the number of log lines written so far."""
    dst.mkdir(parents=True, exist_ok=True)
    if (src / "args.yaml").exists():
        shutil.copy(src / "args.yaml", dst / "args.yaml")
    log_lines = (src / "train.log").read_bytes().splitlines(keepends=True) if (src / "train.log").exists() else []
    summary = (src / "summary.csv").read_bytes().splitlines(keepends=True) if (src / "summary.csv").exists() else []
    header, rows = (summary[:1], summary[1:]) if summary else ([], [])
    rows_written = 0
    epoch = -1
    with open(dst / "train.log", "ab") as log:
        for start in range(0, len(log_lines), lines_per_step):
            for line in log_lines[start:start + lines_per_step]:
                log.write(line)
                match = _TRAIN_EPOCH.search(line)
                if match:
                    epoch = max(epoch, int(match.group(1)))
            log.flush()
            rows_written = _write_rows(dst, header, rows, rows_written, epoch)
            yield start + lines_per_step
    _write_rows(dst, header, rows, rows_written, 10**9)
    yield len(log_lines)


def _write_rows(dst: Path, header: list[bytes], rows: list[bytes], written: int, epoch: int) -> int:
    """summary.csv rows of the epochs before ``epoch`` (rows are in epoch order; a resumed run's second
    header is a row like any other here)."""
    target = min(len(rows), max(written, epoch))
    if target > written:
        with open(dst / "summary.csv", "ab") as out:
            if written == 0 and header:
                out.write(header[0])
            out.writelines(rows[written:target])
    return max(written, target)
