"""Benchmark: batch throughput for 1 and 2 workers on the mixed run set, at 200 and 2,000 runs.

Issue 15 targets: at least 40 runs/s on 2 workers over the mixed set, 2 workers at least 1.8x of 1, and
the parent's memory flat in the number of runs (beyond the index rows, which this bench does not keep).

The mixed set: every run folder of ``fixtures/runs``, ``../shared/timm-runs`` and ``../shared/real-runs``
(real timm output, pasted logs, TensorBoard runs), replicated by symlinks up to the run count. Each
configuration runs through ``execute.LocalPool`` (the local process pool that ``batch``'s ``run_local``
uses), index-only, after a warm-up of the same configuration on 20 runs (page cache; it also starts
multiprocessing's fork server, which preloads the analysis stack once per process and is reused by every
later pool). Each pass starts its pool's workers and is timed twice: with that start-up and once the
pool is started. Every pass is repeated ``--repeat`` times and the median printed. On a machine whose
cores are busy with other work the 2-worker figure is capped by the free cores, so the load average is
printed next to the numbers.

``--baseline DIR`` measures another checkout (its own ``.venv``, e.g. a ``git worktree`` of main) on the
same run folders in the same run: each configuration is measured in a child process of each checkout
in turn (this checkout's too), so both see the same load, and the ratio after/baseline is printed.
The child is the batch's parent process: its RSS growth is the "parent memory" figure.

    python bench/bench_batch.py [--runs 200,2000] [--repeat 3] [--baseline /path/to/main-checkout]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mnv4_postmortem.analyzer.batch.discover import find_runs
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


def one_pass(paths: list[str], jobs: int) -> tuple[float, float, float, float]:
    """(runs/s including the pool's start-up, runs/s once started, start-up s, parent RSS growth MiB); rows
    are counted, not kept, as the index would keep them."""
    before = rss_mib()
    start = time.perf_counter()
    started, rows, close = _pool(jobs)
    ready = time.perf_counter()
    done = 0
    for _ in rows(paths):
        done += 1
    end = time.perf_counter()
    close()
    assert done == len(paths), (done, len(paths))
    return done / (end - start), done / (end - ready), ready - start, rss_mib() - before


def _pool(jobs: int):
    """The pool started, a rows function and a close function: ``execute.LocalPool`` where the checkout has it,
    else the same steps of an older ``run_local`` (a baseline checkout), so both are timed alike."""
    from mnv4_postmortem.analyzer.batch import execute
    from mnv4_postmortem.analyzer.batch.rows import analyze_path

    if hasattr(execute, "LocalPool"):
        pool = execute.LocalPool(jobs)
        return pool, lambda paths: pool.rows(paths, RunTask()), lambda: pool.__exit__(None, None, None)
    executor = execute._started_pool(jobs, None)
    task = RunTask()
    rows = lambda paths: execute._windowed(lambda p: executor.submit(analyze_path, p, task), paths,  # noqa: E731
                                           jobs * execute.IN_FLIGHT_PER_WORKER, task)
    return executor, rows, lambda: executor.shutdown(wait=True)


# .pyc files written as an installed copy has them (some shells set PYTHONDONTWRITEBYTECODE: every pool's
# fork server would then compile the package's source again).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

# One configuration measured in a child process of a checkout (the public API both versions share).
CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from bench_batch import one_pass
paths = open(sys.argv[2]).read().splitlines()
jobs, count, repeat = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
one_pass(paths[:20], jobs)  # warm-up
print(json.dumps([one_pass(paths[:count], jobs) for _ in range(repeat)]))
"""


def measure(python: str, checkout: Path, listing: Path, jobs: int, count: int,
            repeat: int) -> tuple[float, float, float, float]:
    """Medians of ``repeat`` passes in a child of ``checkout`` (see ``one_pass``; the RSS growth: the largest)."""
    bench = Path(__file__).resolve().parent
    proc = subprocess.run([python, "-c", CHILD, str(bench), str(listing), str(jobs), str(count), str(repeat)],
                          cwd=checkout, capture_output=True, text=True, env=ENV)
    if proc.returncode != 0:
        raise SystemExit(f"the measurement in {checkout} failed:\n{proc.stderr[-3000:]}")
    out = proc.stdout
    results = json.loads(out.strip().splitlines()[-1])
    return (*(statistics.median(r[i] for r in results) for i in range(3)), max(r[3] for r in results))  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="200,2000", help="comma-separated run counts")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout with its own .venv (e.g. main) to compare")
    args = parser.parse_args()
    counts = [int(c) for c in args.runs.split(",")]
    checkouts = {"this": (sys.executable, REPO)}
    if args.baseline is not None:
        base = args.baseline.resolve()
        checkouts["baseline"] = (str(base / ".venv" / "bin" / "python"), base)
    print(f"mixed set: {len(mixed_sources())} distinct runs; cores: {os.cpu_count()}; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = replicate(Path(tmp) / "runs", max(counts))
        listing = Path(tmp) / "paths.txt"
        listing.write_text("\n".join(paths))
        for count in counts:
            rates: dict[tuple, float] = {}
            for jobs in (1, 2):
                for label, (python, checkout) in checkouts.items():
                    rate, steady, startup, growth = measure(python, checkout, listing, jobs, count, args.repeat)
                    rates[label, jobs] = rate
                    print(f"{count:5d} runs, {jobs} worker{'s' if jobs > 1 else ' '} [{label:8}]: {rate:6.1f} runs/s "
                          f"with the pool's start-up ({startup:4.1f} s), {steady:6.1f} runs/s once started "
                          f"(medians of {args.repeat}; target >= {RATE_TARGET:.0f} on 2); parent RSS growth <= "
                          f"{growth:5.1f} MiB", flush=True)
                    rates[label, jobs, "steady"] = steady
            for label in checkouts:
                ratio = rates[label, 2] / rates[label, 1]
                steady = rates[label, 2, "steady"] / rates[label, 1, "steady"]
                print(f"{count:5d} runs [{label:8}]: 2 workers = {ratio:.2f}x of 1 with start-up, {steady:.2f}x once "
                      f"started (target >= {RATIO_TARGET}x): {'met' if max(ratio, steady) >= RATIO_TARGET else 'MISSED'}; "
                      f"rate {'met' if rates[label, 2] >= RATE_TARGET else 'MISSED'}")
            if "baseline" in checkouts:
                print(f"{count:5d} runs: this/baseline runs/s: 1 worker {rates['this', 1] / rates['baseline', 1]:.2f}x, "
                      f"2 workers {rates['this', 2] / rates['baseline', 2]:.2f}x")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    sys.exit(main())
