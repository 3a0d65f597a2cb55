"""Benchmark: the console-log parser against merely iterating the log's lines in Python.

Generates a realistic timm console log (layout D Train lines at log_interval 50, a ``Test:`` and a
``Test (EMA):`` block every epoch, checkpoint lists, start-up lines, a resume half-way) into a
temporary folder and prints two ratios:

1. time: ``parse_console_log`` on a 500,000-line log against the baseline
   ``for line in open(path, errors="replace"): pass`` on the same file (best of ``--repeat``);
   target <= 4x.
2. memory: the peak traced allocation (tracemalloc) while parsing a ``--mem-mb`` log, against the
   size of the arrays parsed from it (the ``steps`` and ``evals`` frames); target < 2x. It is also
   measured on a log half that size, to show that the ratio holds as the log grows (the peak is the
   parsed arrays plus a constant working set of a few blocks).

    .venv/bin/python bench/bench_console_log.py [--lines 500000] [--repeat 5] [--mem-mb 200]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from mnv4_postmortem.analyzer.ingest.console_log import parse_console_log

TIME_TARGET = 4.0
MEMORY_TARGET = 2.0
PER_EPOCH = 5004          # updates per epoch (ImageNet at global batch 256)
LOG_INTERVAL = 50
VAL_LAST = 195            # validation batches - 1

HEADER = """Training with a single process on 1 device (cuda:0).
Model mobilenetv4_conv_medium created, param count:9715880
Data processing configuration for current model + dataset:
\tinput_size: (3, 256, 256)
\tinterpolation: bicubic
\tmean: (0.485, 0.456, 0.406)
\tstd: (0.229, 0.224, 0.225)
\tcrop_pct: 0.95
\tcrop_mode: center
AMP not enabled. Training in torch.float32.
ClassificationTask: criterion=LabelSmoothingCrossEntropy
Learning rate (0.002) calculated from base learning rate (0.002) and effective global batch size (256) with sqrt scaling.
Created AdamW (adamw) optimizer: lr: 0.002, betas: (0.9, 0.999), eps: 1e-08, weight_decay: 0.05, amsgrad: False
Scheduled epochs: 500 (epochs + cooldown_epochs). Warmup within epochs when warmup_prefix=False. LR stepped per epoch.
"""
RESUME = """Training with a single process on 1 device (cuda:0).
Model mobilenetv4_conv_medium created, param count:9715880
Restoring model state from checkpoint...
Restoring optimizer state from checkpoint...
Loaded checkpoint './output/train/run/last.pth.tar' (epoch {epoch})
"""


def epoch_text(epoch: int, rng: np.random.Generator, epochs: int) -> str:
    """One epoch as timm v1.0.23+ prints it."""
    out = []
    progress = epoch / max(epochs, 1)
    lr = 0.002 * 0.5 * (1 + math.cos(math.pi * progress)) + 1e-6
    loss_avg = 6.9 * math.exp(-3 * progress) + 1.0
    indices = list(range(0, PER_EPOCH, LOG_INTERVAL)) + [PER_EPOCH - 1]
    for idx in indices:
        loss = loss_avg * (1 + 0.05 * rng.standard_normal())
        batch_time = 0.25 + 0.02 * rng.random()
        data_time = 0.002 + 0.01 * rng.random()
        out.append(
            f"Train: {epoch} [{idx:>4d}/{PER_EPOCH} ({100. * (idx + 1) / PER_EPOCH:>3.0f}%)]  "
            f"Loss: {loss:#.3g} ({loss_avg:#.3g})  Time: {batch_time:.3f}s, {256 / batch_time:>7.2f}/s  "
            f"({batch_time:.3f}s, {256 / batch_time:>7.2f}/s)  LR: {lr:.3e}  Data: {data_time:.3f} ({data_time:.3f})")
    top1 = 80 * (1 - math.exp(-4 * progress))
    for name in ("Test", "Test (EMA)"):
        for idx in (0, 50, 100, 150, VAL_LAST):
            out.append(f"{name}: [{idx:>4d}/{VAL_LAST}]  Time: 0.105 (0.132)  Loss: {7 - top1 / 20:>7.3f} ({7 - top1 / 20:>6.3f})  "
                       f"Acc@1: {top1 + rng.random():>7.3f} ({top1:>7.3f})  Acc@5: {min(99.9, top1 + 15):>7.3f} ({min(99.9, top1 + 15):>7.3f})")
    out.append("Current checkpoints:")
    out.extend(f" ('./output/train/run/checkpoint-{e}.pth.tar', {top1 - (epoch - e) * 0.01})"
               for e in range(epoch, max(-1, epoch - 10), -1))
    out.append("")
    return "\n".join(out) + "\n"


def write_log(path: Path, *, lines: int | None = None, megabytes: float | None = None) -> int:
    """A log of about ``lines`` lines or ``megabytes`` MB; returns its line count."""
    rng = np.random.default_rng(0)
    written_lines, written_bytes, epoch = HEADER.count("\n"), len(HEADER), 0
    with open(path, "w") as stream:
        stream.write(HEADER)
        resumed = False
        while (lines is None or written_lines < lines) and (megabytes is None or written_bytes < megabytes * 1e6):
            if not resumed and ((lines and written_lines > lines / 2) or (megabytes and written_bytes > megabytes * 5e5)):
                text = RESUME.format(epoch=epoch - 3) + epoch_text(epoch - 2, rng, 500)   # repeats two epochs
                resumed = True
            else:
                text = epoch_text(epoch, rng, 500)
                epoch += 1
            stream.write(text)
            written_lines += text.count("\n")
            written_bytes += len(text)
    return written_lines


def best_of(repeat: int, fn) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def iterate_lines(path: Path) -> None:
    for _ in open(path, errors="replace"):
        pass


def parsed_bytes(log) -> int:
    return int(log.steps.memory_usage(index=False, deep=True).sum() + log.evals.memory_usage(index=False, deep=True).sum())


def peak_ratio(path: Path) -> tuple[float, int, int]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    log = parse_console_log(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = parsed_bytes(log)
    return peak / size, peak, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mem-mb", type=float, default=200.0, help="log size for the memory measurement (1000 = 1 GB)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_console_log_") as folder:
        path = Path(folder) / "train.log"
        n = write_log(path, lines=args.lines)
        log = parse_console_log(path)
        # interleaved, best of each: the machine may be shared, and load comes and goes
        baseline = parse = math.inf
        for _ in range(args.repeat):
            baseline = min(baseline, best_of(1, lambda: iterate_lines(path)))
            parse = min(parse, best_of(1, lambda: parse_console_log(path)))
        ratio = parse / baseline
        print(f"log: {n:,} lines, {path.stat().st_size / 1e6:.0f} MB -> {len(log.steps):,} steps, {len(log.evals):,} evals, "
              f"{sum(e.kind == 'resume' for e in log.events)} resume")
        print(f"baseline (for line in open(path, errors='replace'): pass): {baseline:.3f}s; parse_console_log: {parse:.3f}s")
        print(f"console-log parse: {ratio:.1f}x the time of iterating lines (target <= {TIME_TARGET:g}x)")
        path.unlink()

        results = []
        for megabytes in (args.mem_mb / 2, args.mem_mb):
            write_log(path, megabytes=megabytes)
            size_mb = path.stat().st_size / 1e6
            memory, peak, arrays = peak_ratio(path)
            results.append((size_mb, memory, peak, arrays))
            path.unlink()
        for size_mb, memory, peak, arrays in results:
            print(f"  {size_mb:6.0f} MB log: peak {peak / 1e6:7.1f} MB traced, parsed arrays {arrays / 1e6:7.1f} MB")
        (small_mb, small, _, _), (big_mb, big, _, _) = results
        print(f"console-log memory: peak {big:.2f}x the size of the parsed arrays on a {big_mb:.0f} MB log "
              f"({small:.2f}x at {small_mb:.0f} MB; the arrays grow linearly with the log, the rest is a fixed "
              f"working set) (target < {MEMORY_TARGET:g}x)")
    return 0 if ratio <= TIME_TARGET and big < MEMORY_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
