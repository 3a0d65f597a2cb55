"""Large inputs for the large-input benchmarks, made from real timm output.

``write_console_log`` extends a real ``train.log`` from ``../shared/timm-runs`` (or ``fixtures/runs``)
to any size: its start-up lines once, then its epochs over and over with growing epoch and step
numbers. Each Train line keeps its real numbers (loss, time, rate, LR, data) and gets a new epoch,
``[idx/total (pct%)]`` as timm prints them for a longer epoch; each validation block is copied as
printed. ``write_summary_csv`` writes a ``summary.csv`` as timm's ``update_summary`` does.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REAL_LOGS = (REPO.parent / "shared" / "timm-runs" / "v1_healthy" / "train.log",
             REPO / "fixtures" / "runs" / "seed_mnv4" / "train.log")
_TRAIN = re.compile(r"Train: (\d+) \[\s*(\d+)/(\d+)(?: \(\s*(\d+)%\))?\]")


def real_log() -> Path:
    return next(path for path in REAL_LOGS if path.exists())


def _epoch_pieces(text: str) -> tuple[list[str], list[list[str]], list[str]]:
    """(start-up lines, the Train lines of each epoch, the lines between epochs: Test blocks, checkpoints)."""
    lines = text.splitlines()
    first = next(k for k, line in enumerate(lines) if _TRAIN.search(line))
    header = lines[:first]
    train_lines = [line for line in lines[first:] if _TRAIN.search(line)]
    between: list[str] = []
    for line in lines[first:]:
        if _TRAIN.search(line):
            if between:
                break
            continue
        between.append(line)
    return header, [train_lines], between


def write_console_log(path: Path, megabytes: float, *, source: Path | None = None, per_epoch: int = 5004,
                      log_interval: int = 50) -> int:
    """A log of about ``megabytes`` MB; returns the number of epochs written."""
    text = (source or real_log()).read_text()
    header, (train_lines,), between = _epoch_pieces(text)
    target = int(megabytes * 1e6)
    idxs = list(range(0, per_epoch, log_interval))
    if idxs[-1] != per_epoch - 1:
        idxs.append(per_epoch - 1)
    width = len(str(per_epoch))
    with open(path, "w", newline="\n") as out:
        out.write("\n".join(header) + "\n")
        written, epoch = out.tell(), 0
        while written < target:
            block = io.StringIO()
            for k, idx in enumerate(idxs):
                real = train_lines[k % len(train_lines)]
                pct = 100.0 * (idx + 1) / per_epoch
                head = f"Train: {epoch} [{idx:>{width}d}/{per_epoch} ({pct:>3.0f}%)]"
                block.write(_TRAIN.sub(lambda _m: head, real, count=1) + "\n")
            for line in between:
                block.write(re.sub(r"checkpoint-\d+", f"checkpoint-{epoch}", line) + "\n")
            chunk = block.getvalue()
            out.write(chunk)
            written += len(chunk)
            epoch += 1
    return epoch


HEADER = "epoch,train_loss,eval_loss,eval_top1,eval_top5,lr"


def write_summary_csv(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` epoch rows as timm writes them (``str(float)`` values, CRLF from ``csv.DictWriter``)."""
    rng = np.random.default_rng(seed)
    epoch = np.arange(rows)
    noise = rng.standard_normal((4, rows))
    loss = 6.9 * np.exp(-epoch / rows * 5) + 0.01 * noise[0]
    columns = (loss, loss * 0.9 + 0.01 * noise[1], 80 * (1 - np.exp(-epoch / rows * 5)), 95.0 + noise[2],
               0.1 * 0.5 ** (epoch / rows))
    with open(path, "w", newline="") as out:
        out.write(HEADER + "\r\n")
        step = 100_000
        for begin in range(0, rows, step):
            end = min(rows, begin + step)
            values = [list(map(repr, map(float, column[begin:end]))) for column in columns]
            out.write("".join(f"{e}," + ",".join(v) + "\r\n" for e, *v in zip(range(begin, end), *values)))
