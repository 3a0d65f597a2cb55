"""Benchmark: batch throughput for 1 and 2 workers on the mixed run set, at 200 and 2,000 runs.

Issue 15 targets: at least 40 runs/s on 2 workers over the mixed set, 2 workers at least 1.8x of 1, and
the parent's memory flat in the number of runs (beyond the index rows, which this bench does not keep).

The mixed set: every run folder of ``fixtures/runs``, ``../shared/timm-runs`` and ``../shared/real-runs``
(real timm output, pasted logs, TensorBoard runs), replicated by symlinks up to the run count. Each
configuration runs through ``execute.run_local`` (the local process pool that ``batch`` uses),
index-only, after a warm-up of the same configuration on 20 runs (page cache, import caches), so the
numbers compare steady-state throughput; pool start-up (fork server, preload) is included in each
measured pass. Every pass is repeated ``--repeat`` times and the median printed. On a machine whose
cores are busy with other work the 2-worker figure is capped by the free cores, so the load average is
printed next to the numbers.

    python bench/bench_batch.py [--runs 200,2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mnv4_postmortem.analyzer.batch.discover import find_runs
from mnv4_postmortem.analyzer.batch.execute import run_local
from mnv4_postmortem.analyzer.batch.rows import RunTask

REPO = Path(__file__).resolve().parents[1]
SOURCES = (REPO / "fixtures" / "runs", REPO.parent / "shared" / "timm-runs", REPO.parent / "shared" / "real-runs")
RATE_TARGET, RATIO_TARGET = 40.0, 1.8


def mixed_sources() -> list[Path]:
    return [p for root in SOURCES if root.is_dir() for p in sorted(root.iterdir()) if p.is_dir()]


def replicate(root: Path, count: int) -> list[str]:
    """``count`` run folders of symlinks to the mixed set's entries (files and sub-folders), cycled."""
    sources = mixed_sources()
    for i in range(count):
        source = sources[i % len(sources)]
        run = root / f"group{i // 100:03d}" / f"{source.name}-{i:05d}"
        run.mkdir(parents=True)
        for entry in source.iterdir():
            os.symlink(entry, run / entry.name)
    return [str(p) for p in find_runs([root])]


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def one_pass(paths: list[str], jobs: int) -> tuple[float, float]:
    """(runs per second, parent RSS growth in MiB); rows are counted, not kept, as the index would keep them."""
    before = rss_mib()
    start = time.perf_counter()
    done = errors = 0
    for row in run_local(paths, RunTask(), jobs):
        done += 1
        errors += row.error is not None
    elapsed = time.perf_counter() - start
    assert done == len(paths), (done, len(paths))
    return done / elapsed, rss_mib() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="200,2000", help="comma-separated run counts")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    counts = [int(c) for c in args.runs.split(",")]
    print(f"mixed set: {len(mixed_sources())} distinct runs; cores: {os.cpu_count()}; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = replicate(Path(tmp), max(counts))
        for count in counts:
            rates: dict[int, float] = {}
            for jobs in (1, 2):
                one_pass(paths[:20], jobs)  # warm-up
                results = [one_pass(paths[:count], jobs) for _ in range(args.repeat)]
                rates[jobs] = statistics.median(r for r, _ in results)
                growth = max(g for _, g in results)
                print(f"{count:5d} runs, {jobs} worker{'s' if jobs > 1 else ' '}: {rates[jobs]:6.1f} runs/s "
                      f"(median of {args.repeat}; target >= {RATE_TARGET:.0f} on 2); parent RSS growth <= {growth:5.1f} MiB",
                      flush=True)
            ratio = rates[2] / rates[1]
            print(f"{count:5d} runs: 2 workers = {ratio:.2f}x of 1 (target >= {RATIO_TARGET}x): "
                  f"{'met' if ratio >= RATIO_TARGET else 'MISSED'}; rate {'met' if rates[2] >= RATE_TARGET else 'MISSED'}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    sys.exit(main())
