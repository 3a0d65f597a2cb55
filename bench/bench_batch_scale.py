"""Benchmark: 5,000 small runs through ``batch`` (index, runs.csv, runs.jsonl, summary.md; no per-run reports),
with peak memory. Target (issue #9): it finishes, and the parent's memory grows only by the index rows.

Small runs: summary.csv + args.yaml of a bundled fixture run (no console log), linked, cycled. The parent's
resident memory is sampled every 1,000 finished rows, so the growth per row is printed next to the peak;
the largest worker's memory is sampled too (workers live for the whole batch, so a leak would show there).
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _batch_runs import make_runs  # noqa: E402

from mnv4_postmortem.analyzer.batch.discover import find_runs  # noqa: E402
from mnv4_postmortem.analyzer.batch.execute import default_jobs, run_local  # noqa: E402
from mnv4_postmortem.analyzer.batch.outputs import BatchOutputs  # noqa: E402
from mnv4_postmortem.analyzer.batch.rows import RunTask  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5000"))
SAMPLE_EVERY = max(1, RUNS // 5)


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def workers_rss_mib() -> float:
    """The pool's workers are children of multiprocessing's fork server, so RUSAGE_CHILDREN never sees
    them: read every descendant's resident memory instead."""
    import psutil

    sizes = []
    for child in psutil.Process().children(recursive=True):
        try:
            sizes.append(child.memory_info().rss)
        except psutil.Error:
            continue
    return max(sizes, default=0) / 2**20


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        make_runs(Path(tmp) / "runs", RUNS, files=("summary.csv", "args.yaml"))
        start = time.perf_counter()
        paths = [str(p) for p in find_runs([Path(tmp) / "runs"])]
        print(f"{len(paths)} small runs found in {time.perf_counter() - start:.1f} s; {default_jobs()} workers")
        outputs = BatchOutputs(Path(tmp) / "out")
        rows, samples, worker_peak = [], [(0, rss_mib())], 0.0
        for row in run_local(paths, RunTask(), default_jobs()):
            rows.append(row)
            outputs.add(row)
            if len(rows) % SAMPLE_EVERY == 0:
                samples.append((len(rows), rss_mib()))
                worker = workers_rss_mib()
                worker_peak = max(worker_peak, worker)
                print(f"  {len(rows):5d} rows  parent RSS {samples[-1][1]:7.1f} MiB  largest worker {worker:6.1f} MiB"
                      f"  ({time.perf_counter() - start:6.1f} s)", flush=True)
        outputs.finish(rows)
        outputs.close()
        elapsed = time.perf_counter() - start
        errors = sum(1 for r in rows if r.error)
        index = (Path(tmp) / "out" / "index.html").stat().st_size
        parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        first, last = samples[1], samples[-1]
        per_row = (last[1] - first[1]) * 2**20 / max(1, last[0] - first[0])
        print(f"{len(rows)} runs in {elapsed:.1f} s ({len(rows) / elapsed:.1f} runs/s), {errors} unreadable")
        print(f"peak memory: parent {parent_peak:.1f} MiB, largest worker {worker_peak:.1f} MiB (sampled); index.html {index / 2**20:.1f} MiB")
        print(f"parent growth from {first[0]} to {last[0]} rows: {last[1] - first[1]:.1f} MiB = {per_row / 1024:.1f} KiB per row (the index rows)")


if __name__ == "__main__":
    main()
