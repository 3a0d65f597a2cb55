"""Benchmark: two of the other trainers' formats against the bare library call on the same file.

What is measured: the file read into the **normalized Run** (``load_run``), the same call ``report`` and
``inspect`` make: discovery of the folder, the format's parse (decoding, JSON/CSV reading, units, the step
frame), and the shared merge (the epoch table and its provenance frame, the step frame, units, timm's recipe
arithmetic). Nothing after the Run (detection, rules, rendering) is included.

1. A Lightning ``metrics.csv`` of 100,000 rows (200 epochs x 499 step rows + an epoch-end row each, the
   CSVLogger layout: ``epoch, step, lr-AdamW, train_loss_step, train_loss_epoch, val_loss, val_acc``) read
   into the normalized Run, against ``pandas.read_csv`` alone on the same file.
2. A DeiT-family ``log.txt`` of 1,000 epochs (one JSON line each, the keys DeiT's main.py writes) read into the
   normalized Run, against a bare ``json.loads`` loop over its lines.

Target: within 2x of the bare call on both. Each is also timed as the format's ``parse`` alone (the file into
its Contribution, without discovery and merge), to show where the time goes. Ratios are against the named
baseline measured in the same process on the same file, best of ``--repeat``, by CPU time (user+sys of this
process: on a shared machine wall time mostly measures the other processes); wall time is printed beside it.

    .venv/bin/python bench/bench_formats.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.ingest.deit_log import DEIT_LOG
from mnv4_postmortem.analyzer.ingest.lightning_csv import LIGHTNING_CSV

TARGET = 2.0


def write_metrics_csv(path: Path, epochs: int = 200, steps: int = 499) -> int:
    rng = np.random.default_rng(0)
    lines = ["epoch,step,lr-AdamW,train_loss_step,train_loss_epoch,val_loss,val_acc"]
    step = 0
    for epoch in range(epochs):
        lr = 1e-3 * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        base = 2.3 * math.exp(-epoch / 60)
        for _ in range(steps):
            lines.append(f"{epoch},{step},{lr!r},{base + 0.05 * rng.standard_normal()!r},,,")
            step += 1
        lines.append(f"{epoch},{step - 1},,,{base!r},{base * 1.1!r},{min(0.99, 1 - base / 2.5)!r}")
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def write_log_txt(path: Path, epochs: int = 1000) -> None:
    rng = np.random.default_rng(0)
    with open(path, "w") as handle:
        for epoch in range(epochs):
            loss = 6.9 * math.exp(-epoch / 300) + 0.01 * rng.standard_normal()
            record = {"train_lr": 1e-3 * 0.5 * (1 + math.cos(math.pi * epoch / epochs)), "train_min_lr": 1e-5,
                      "train_loss": loss, "train_weight_decay": 0.05, "test_loss": loss * 0.6,
                      "test_acc1": 80 * (1 - math.exp(-epoch / 200)), "test_acc5": 95 * (1 - math.exp(-epoch / 150)),
                      "epoch": epoch, "n_parameters": 5717416}
            handle.write(json.dumps(record) + "\n")


def timed(repeat: int, fn) -> tuple[float, float]:
    """Best wall time and best CPU time (``time.process_time``: user+sys of this process) over ``repeat`` runs.
    The ratios use CPU time: on a shared machine wall time mostly measures the other processes."""
    best_wall, best_cpu = math.inf, math.inf
    for _ in range(repeat):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        fn()
        best_wall = min(best_wall, time.perf_counter() - wall0)
        best_cpu = min(best_cpu, time.process_time() - cpu0)
    return best_wall, best_cpu


def json_loop(path: Path) -> list:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def line(name: str, ours: tuple[float, float], base: tuple[float, float], base_name: str) -> float:
    ratio = ours[1] / base[1]
    print(f"{name:<44} cpu {ours[1] * 1e3:7.1f} ms (wall {ours[0] * 1e3:7.1f})   {base_name} cpu {base[1] * 1e3:6.1f} ms "
          f"(wall {base[0] * 1e3:6.1f})   ratio {ratio:5.2f}x (cpu)")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv_dir, log_dir = Path(tmp) / "lightning", Path(tmp) / "deit"
        csv_dir.mkdir()
        log_dir.mkdir()
        rows = write_metrics_csv(csv_dir / "metrics.csv")
        write_log_txt(log_dir / "log.txt")
        run = load_run(csv_dir)
        assert len(run.steps) == 99_800 and len(run.epochs) == 200, (len(run.steps), len(run.epochs))
        deit = load_run(log_dir)
        assert len(deit.epochs) == 1000

        print(f"metrics.csv: {rows} rows ({(csv_dir / 'metrics.csv').stat().st_size >> 10} KiB); "
              f"log.txt: 1000 epochs ({(log_dir / 'log.txt').stat().st_size >> 10} KiB); best of {args.repeat}")
        base_csv = timed(args.repeat, lambda: pd.read_csv(csv_dir / "metrics.csv"))
        ratios = [line("metrics.csv -> normalized Run (load_run)", timed(args.repeat, lambda: load_run(csv_dir)),
                       base_csv, "pandas.read_csv")]
        line("metrics.csv -> Contribution (parse only)",
             timed(args.repeat, lambda: LIGHTNING_CSV.parse(csv_dir / "metrics.csv", "metrics.csv")), base_csv, "pandas.read_csv")
        base_json = timed(args.repeat, lambda: json_loop(log_dir / "log.txt"))
        ratios.append(line("log.txt -> normalized Run (load_run)", timed(args.repeat, lambda: load_run(log_dir)),
                           base_json, "json.loads loop"))
        line("log.txt -> Contribution (parse only)",
             timed(args.repeat, lambda: DEIT_LOG.parse(log_dir / "log.txt", "log.txt")), base_json, "json.loads loop")
    verdict = "within" if all(r <= TARGET for r in ratios) else "NOT within"
    print(f"target: load_run within {TARGET:g}x of the bare call on both: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
