"""Benchmark: full analysis (ingest + detect + derive + rules) of a 600-epoch run.

Target (issue #3): well under one second beyond interpreter start. Prints the in-process time of
``load_run`` + ``analyze`` (imports excluded) against that 1 s budget, and the whole CLI process
against a bare ``python -c pass`` start-up.

The run is generated in a temp dir in timm's own formats: summary.csv (v0.8.2+ header), args.yaml
from a bundled fixture with epochs 600, and a console log with 10 Train lines and a Test block per epoch.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 600
STEPS = 100


def make_run(folder: Path) -> None:
    rng = np.random.default_rng(0)
    args = (REPO / "fixtures/runs/v1_healthy/args.yaml").read_text().replace("epochs: 12", f"epochs: {EPOCHS}")
    (folder / "args.yaml").write_text(args)
    lines, rows = [], ["epoch,train_loss,eval_loss,eval_top1,eval_top5,lr"]
    for epoch in range(EPOCHS):
        progress = epoch / EPOCHS
        lr = 1e-3 * 0.5 * (1 + math.cos(math.pi * progress))
        train = 2.3 * math.exp(-4 * progress) + 0.3 + rng.normal(0, 0.02)
        evl = 2.0 * math.exp(-3 * progress) + 0.5 + rng.normal(0, 0.02)
        top1 = 90 - 80 * math.exp(-5 * progress) + rng.normal(0, 0.5)
        for idx in range(0, STEPS, 10):
            lines.append(f"Train: {epoch} [{idx:>4d}/{STEPS} ({100 * (idx + 1) / STEPS:>3.0f}%)]  Loss: {train:#.3g} ({train:#.3g})  "
                         f"Time: 0.130s,  246.15/s  (0.130s,  246.15/s)  LR: {lr:.3e}  Data: 0.004 (0.004)")
        lines.append(f"Test: [   9/9]  Time: 0.010 (0.024)  Loss: {evl:>7.3f} ({evl:>6.3f})  Acc@1: {top1:>7.3f} ({top1:>7.3f})  "
                     f"Acc@5: {min(100, top1 + 8):>7.3f} ({min(100, top1 + 8):>7.3f})")
        rows.append(f"{epoch},{train},{evl},{top1},{min(100.0, top1 + 8)},{lr}")
    (folder / "train.log").write_text("\n".join(lines) + "\n")
    (folder / "summary.csv").write_text("\r\n".join(rows) + "\r\n")


def main() -> None:
    from mnv4_postmortem.analyzer.engine import load_pack
    from mnv4_postmortem.analyzer.features.names import is_known_name
    from mnv4_postmortem.analyzer.pipeline import diagnose as analyze
    from mnv4_postmortem.analyzer.ingest import load_run

    folder = Path(tempfile.mkdtemp(prefix="mnv4-bench-"))
    try:
        make_run(folder)
        pack = load_pack(known_names=is_known_name)
        analyze(load_run(folder), pack)  # warm caches (numpy/scipy lazy imports)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            report = analyze(load_run(folder), pack)
            times.append(time.perf_counter() - start)
        best = min(times)
        print(f"analysis of a {EPOCHS}-epoch run ({EPOCHS * STEPS // 10} Train lines): {best:.3f} s in-process "
              f"(budget 1.0 s => {best / 1.0:.2f}x of budget); {len(report.findings)} finding(s)")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mnv4_postmortem", "report", str(folder), "--format", "json"],
                       check=True, capture_output=True)
        cli = time.perf_counter() - start
        print(f"CLI report end to end: {cli:.2f} s; bare interpreter start {bare:.2f} s; "
              f"beyond interpreter start: {cli - bare:.2f} s (imports of pandas/scipy/ruptures included)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
