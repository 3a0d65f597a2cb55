"""Benchmark: our TensorBoard scalar reader against ``tbparse.SummaryReader(...).scalars``.

Generates one event file of 200,000 scalars (four tags, one value per event as torch and TF
write them, a version header first, TFRecord framing with real masked CRC32C) into a temporary
folder, reads it with both readers, checks that they agree exactly (same tags, steps, values)
and prints the throughput ratio (CPU time, best of ``--repeat`` for ours, one run of tbparse).
CRCs are checked by our reader, as by default.

    .venv/bin/python bench/bench_tensorboard.py [--scalars 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import struct
import sys
import tempfile
import time
from pathlib import Path

import crc32c
import numpy as np
import pandas as pd
import tbparse
from tensorboard.compat.proto import event_pb2, summary_pb2

from mnv4_postmortem.analyzer.ingest.tensorboard import read_event_file

TAGS = ("train/loss", "train/lr", "train/grad_norm", "train/throughput")
TARGET = 10.0


def _masked_crc(data: bytes) -> int:
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _record(payload: bytes) -> bytes:
    length = struct.pack("<Q", len(payload))
    return b"".join((length, struct.pack("<I", _masked_crc(length)), payload, struct.pack("<I", _masked_crc(payload))))


def write_event_file(path: Path, n_scalars: int) -> None:
    """One event per scalar, tags interleaved per step, like a training loop calling add_scalar."""
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(n_scalars)
    chunks = [_record(event_pb2.Event(wall_time=1.7e9, file_version="brain.Event:2").SerializeToString())]
    for i in range(n_scalars):
        step, tag = divmod(i, len(TAGS))
        value = math.exp(-step / 20000) + 0.01 * noise[i]
        event = event_pb2.Event(
            wall_time=1.7e9 + step * 0.1,
            step=step,
            summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=TAGS[tag], simple_value=value)]),
        )
        chunks.append(_record(event.SerializeToString()))
    path.write_bytes(b"".join(chunks))


def _best_of(repeat: int, fn):
    """Best CPU time of ``repeat`` runs: process time, so other jobs on a shared machine do not
    count against either reader (both are single-threaded and read a file in the page cache)."""
    best, result = math.inf, None
    for _ in range(repeat):
        start = time.process_time()
        result = fn()
        best = min(best, time.process_time() - start)
    return best, result


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    return (
        frame[["tag", "step", "value"]]
        .astype({"tag": str, "step": "int64", "value": "float64"})
        .sort_values(["tag", "step"], kind="stable")
        .reset_index(drop=True)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scalars", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_tb_") as tmp:
        path = Path(tmp) / "events.out.tfevents.1700000000.bench.1.0"
        write_event_file(path, args.scalars)
        size_mb = path.stat().st_size / 1e6

        ours_s, (ours, issues) = _best_of(args.repeat, lambda: read_event_file(path, check_crc=True))
        # tbparse is the slow path: one timing is plenty.
        base_s, base = _best_of(1, lambda: tbparse.SummaryReader(str(path)).scalars)

    if issues:
        print(f"unexpected issues: {issues}", file=sys.stderr)
        return 1
    if len(ours) != args.scalars or not _canonical(ours).equals(_canonical(base)):
        print("MISMATCH: read_event_file and tbparse disagree on tags/steps/values", file=sys.stderr)
        return 1

    ratio = base_s / ours_s
    print(f"file: {args.scalars} scalars, {size_mb:.1f} MB; tbparse {base_s:.2f} s, ours {ours_s:.3f} s "
          f"({args.scalars / ours_s / 1e6:.2f} M scalars/s, CRC checked)")
    print(f"tensorboard scalars: {ratio:.1f}x the throughput of tbparse.SummaryReader(...).scalars "
          f"(target >= {TARGET:g}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
