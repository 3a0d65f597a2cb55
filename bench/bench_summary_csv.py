"""Benchmark: our summary.csv parser against ``pandas.read_csv`` on the same file.

Generates a summary.csv of 200,000 epoch rows as timm writes them (CRLF, ``str(float)`` values,
an ``lr`` column, a resume with a second header and repeated epochs half-way) into a temporary
folder, parses it with both, checks that they agree on the kept rows, and prints the time ratio.
pandas is the C-speed baseline: it does far less (no per-line recovery, no provenance, no
resume handling), so the ratio says what robustness costs.

    .venv/bin/python bench/bench_summary_csv.py [--rows 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.ingest.summary_csv import parse_summary_csv

HEADER = "epoch,train_loss,eval_loss,eval_top1,eval_top5,lr"
TARGET = 8.0


def write_summary(path: Path, rows: int) -> None:
    """``rows`` epochs, resumed at 60% from a checkpoint at 50% (epochs in between repeat)."""
    rng = np.random.default_rng(0)
    resume_at, restart_from = int(rows * 0.6), int(rows * 0.5)
    epochs = list(range(resume_at)) + list(range(restart_from, rows))
    out = io.StringIO()
    out.write(HEADER + "\r\n")
    for position, epoch in enumerate(epochs):
        if position == resume_at:
            out.write(HEADER + "\r\n")
        noise = rng.standard_normal(4)
        loss = 6.9 * math.exp(-epoch / rows * 5) + 0.01 * noise[0]
        values = (loss, loss * 0.9 + 0.01 * noise[1], 80 * (1 - math.exp(-epoch / rows * 5)), 95.0 + noise[2], 0.1 * 0.5 ** (epoch / rows))
        out.write(f"{epoch}," + ",".join(str(float(value)) for value in values) + "\r\n")
    path.write_text(out.getvalue(), newline="")


def best_of(repeat: int, fn) -> tuple[float, object]:
    best, result = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def pandas_baseline(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str)
    frame = frame[frame["epoch"] != "epoch"].astype(float)  # drop the repeated header
    frame["epoch"] = frame["epoch"].astype(int)
    return frame.drop_duplicates("epoch", keep="last").set_index("epoch").sort_index()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "summary.csv"
        write_summary(path, options.rows)
        ours_s, ours = best_of(options.repeat, lambda: parse_summary_csv(path))
        base_s, base = best_of(options.repeat, lambda: pandas_baseline(path))
        size_mb = path.stat().st_size / 1e6
    pd.testing.assert_frame_equal(ours.frame, base, check_names=False, check_index_type=False)
    assert [event.kind for event in ours.events] == ["resume"]
    ratio = ours_s / base_s
    print(f"summary.csv: {options.rows} rows, {size_mb:.1f} MB; ours {ours_s:.3f}s, pandas.read_csv {base_s:.3f}s")
    print(f"summary.csv parse: {ratio:.1f}x the time of pandas.read_csv (target <= {TARGET:g}x)")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
