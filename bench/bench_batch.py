"""Benchmark: batch throughput, 1 worker against 2, on 200 runs (issue #9 target: 2 workers >= 1.7x the runs
per second of 1 worker). The runs link to the bundled fixture runs (real timm output, cycled).

Both configurations go through the same local process pool (``execute.run_local``), index-only
(``--no-run-reports``), so the ratio measures the parallel analysis itself. Pool start-up is included.
On a machine whose cores are busy with other work the ratio is capped by the free cores: the bench prints
the load average next to the numbers for that reason.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _batch_runs import make_runs  # noqa: E402

from mnv4_postmortem.analyzer.batch.discover import find_runs  # noqa: E402
from mnv4_postmortem.analyzer.batch.execute import run_local  # noqa: E402
from mnv4_postmortem.analyzer.batch.rows import RunTask  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "200"))
TARGET = 1.7


def runs_per_second(paths: list[str], jobs: int) -> float:
    start = time.perf_counter()
    rows = list(run_local(paths, RunTask(), jobs))
    elapsed = time.perf_counter() - start
    assert len(rows) == len(paths) and not any(r.error for r in rows), [r.error for r in rows if r.error][:3]
    return len(rows) / elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        make_runs(Path(tmp), RUNS)
        paths = [str(p) for p in find_runs([Path(tmp)])]
        print(f"{len(paths)} runs (fixture runs, cycled); cores: {os.cpu_count()}; load average before: {os.getloadavg()[0]:.2f}")
        # Warm the page cache and the import caches first, or whichever configuration runs first pays them.
        runs_per_second(paths[:20], 1)
        one = runs_per_second(paths, 1)
        print(f"1 worker : {one:6.2f} runs/s")
        two = runs_per_second(paths, 2)
        print(f"2 workers: {two:6.2f} runs/s")
        ratio = two / one
        verdict = "met" if ratio >= TARGET else "MISSED"
        print(f"ratio {ratio:.2f}x (target >= {TARGET}x): {verdict}; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
