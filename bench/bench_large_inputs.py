"""Benchmark: large inputs through the whole command (issue 15), each against a named baseline on the same file.

1. ``summary.csv`` of ``--csv-rows`` rows (10^6; written as timm's ``update_summary`` does): a fresh
   ``mnv4-postmortem inspect RUN`` process against a fresh process running ``pandas.read_csv(FILE)``.
   Target: within 3x (CPU and wall, best of ``--repeat``).
2. A ``--log-mb`` MB console log (100), made from a real timm log (``../shared/timm-runs/v1_healthy``)
   by repeating its epochs with growing epoch and step numbers (``bench/_large_inputs.py``):
   ``inspect`` and ``report`` as fresh processes. Target: >= 30 MB/s. The baseline named beside it is
   a process that only reads the file's lines (``for line in open(FILE, 'rb')``), to show what the
   machine gives at the time.
3. Memory, for both: the peak resident memory of the ``inspect`` process minus that of the same
   command on a 10-line file of the same kind (the interpreter and libraries), against the bytes of
   the parsed arrays (the Run's epoch frame and refs, and its step rows). Target: at most 3x. The
   peak of traced allocations (tracemalloc) while loading the run in-process is printed beside it.

The machine may be shared: CPU time (user+sys of the child) is printed beside wall time, and
every ratio is against a baseline measured in the same run. ``--log-gb 1`` adds a 1 GB log
(inspect only) to show that the time stays linear.

    .venv/bin/python bench/bench_large_inputs.py [--csv-rows 1000000] [--log-mb 100] [--repeat 3] [--log-gb 0]
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _large_inputs import write_console_log, write_summary_csv  # noqa: E402
from _process import time_process  # noqa: E402

CSV_TARGET = 3.0          # x pandas.read_csv, whole process
LOG_TARGET_MB_S = 30.0
MEMORY_TARGET = 3.0       # x the parsed arrays

# Runs a command of the CLI in this process and prints its peak resident memory (KiB) to stderr.
# (VmHWM of /proc: ru_maxrss would carry the parent's size over the fork into the child.)
_MEASURED = ("import runpy, sys\n"
             "sys.argv = ['mnv4-postmortem'] + sys.argv[1:]\n"
             "try:\n    runpy.run_module('mnv4_postmortem', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
             "print('MAXRSS', hwm[0] if hwm else 0, file=sys.stderr)\n")


def _run(command: list[str], repeat: int) -> tuple[float, float, int, subprocess.CompletedProcess]:
    """Best wall, best CPU (user+sys of the child), the peak RSS in KiB (when printed), the last result."""
    best_wall, best_cpu, result = time_process(command, repeat)
    rss = next((int(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("MAXRSS ")), 0)
    return best_wall, best_cpu, rss, result


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", _MEASURED, *args]


def _parsed_bytes(run_dir: Path) -> tuple[int, int]:
    """(bytes of the Run's arrays: epoch frame, epoch refs, step rows; traced peak while loading)."""
    from mnv4_postmortem.analyzer.ingest.merge import load_run

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    run = load_run(run_dir)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    size = int(run.epochs.memory_usage(index=True).sum())
    seen: set[int] = set()
    for column in run.epoch_refs.columns:   # line-ref columns share their line arrays: count each once
        array = run.epoch_refs[column].array
        for part in (getattr(array, "_code", None), getattr(array, "_line", None)):
            if part is not None and id(part) not in seen:
                seen.add(id(part))
                size += part.nbytes
    size += int(run.steps.memory_usage(index=True, deep=False).sum()) if len(run.steps) else 0
    return size, peak


def _memory_line(name: str, rss_kib: int, small_rss_kib: int, parsed: int, traced_peak: int) -> bool:
    net = (rss_kib - small_rss_kib) * 1024
    ratio = net / parsed if parsed else math.inf
    print(f"{name} memory: peak RSS {rss_kib / 1024:.0f} MiB, {net / 2**20:.0f} MiB above the same command on a 10-line "
          f"file; parsed arrays {parsed / 2**20:.0f} MiB -> {ratio:.2f}x (target <= {MEMORY_TARGET:g}x); traced peak "
          f"while loading {traced_peak / 2**20:.0f} MiB = {traced_peak / parsed:.2f}x")
    return ratio <= MEMORY_TARGET


def bench_csv(root: Path, rows: int, repeat: int) -> bool:
    folder, small = root / "csv", root / "csv_small"
    folder.mkdir()
    small.mkdir()
    path = folder / "summary.csv"
    write_summary_csv(path, rows)
    write_summary_csv(small / "summary.csv", 10)
    reading = [sys.executable, "-c", "import sys, pandas; print(len(pandas.read_csv(sys.argv[1])))", str(path)]
    base_wall, base_cpu, _, base = _run(reading, repeat)
    ours_wall, ours_cpu, rss, ours = _run(_cli("inspect", str(folder)), repeat)
    _, _, small_rss, _ = _run(_cli("inspect", str(small)), 1)
    if ours.returncode != 0 or base.stdout.strip() != str(rows):
        print(f"inspect exited {ours.returncode}: {ours.stderr[-400:]}", file=sys.stderr)
        return False
    print(f"summary.csv: {rows:,} rows, {path.stat().st_size / 1e6:.0f} MB")
    print(f"  pandas.read_csv process: {base_wall:.2f} s wall, {base_cpu:.2f} s CPU; "
          f"inspect process: {ours_wall:.2f} s wall, {ours_cpu:.2f} s CPU")
    print(f"  inspect / pandas.read_csv: {ours_wall / base_wall:.2f}x wall, {ours_cpu / base_cpu:.2f}x CPU "
          f"(target <= {CSV_TARGET:g}x)")
    parsed, traced = _parsed_bytes(folder)
    memory_ok = _memory_line("  summary.csv inspect", rss, small_rss, parsed, traced)
    return ours_cpu / base_cpu <= CSV_TARGET and memory_ok


def bench_log(root: Path, megabytes: float, repeat: int, commands: tuple[str, ...] = ("inspect", "report")) -> bool:
    folder, small = root / f"log{megabytes:g}", root / "log_small"
    folder.mkdir()
    small.mkdir(exist_ok=True)
    path = folder / "train.log"
    epochs = write_console_log(path, megabytes)
    (small / "train.log").write_text("".join(path.open().readline() for _ in range(1)) + "".join(
        line for _, line in zip(range(10), path.open())))
    size_mb = path.stat().st_size / 1e6
    reading = [sys.executable, "-c", "import sys\nfor line in open(sys.argv[1], 'rb'): pass", str(path)]
    base_wall, base_cpu, _, _ = _run(reading, repeat)
    print(f"console log: {size_mb:.0f} MB, {epochs:,} epochs; a process reading its lines: {base_wall:.2f} s wall, "
          f"{base_cpu:.2f} s CPU ({size_mb / base_wall:.0f} MB/s wall)")
    ok = True
    for command in commands:
        wall, cpu, rss, result = _run(_cli(command, str(folder)), repeat)
        if result.returncode not in (0, 1, 3, 4):
            print(f"{command} exited {result.returncode}: {result.stderr[-400:]}", file=sys.stderr)
            return False
        print(f"  {command}: {wall:.2f} s wall, {cpu:.2f} s CPU -> {size_mb / wall:.1f} MB/s wall, "
              f"{size_mb / cpu:.1f} MB/s CPU (target >= {LOG_TARGET_MB_S:g} MB/s); {wall / base_wall:.1f}x the line-reading process")
        ok &= size_mb / cpu >= LOG_TARGET_MB_S
        if command == "inspect":
            _, _, small_rss, _ = _run(_cli("inspect", str(small)), 1)
            parsed, traced = _parsed_bytes(folder)
            ok &= _memory_line("  console log inspect", rss, small_rss, parsed, traced)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv-rows", type=int, default=1_000_000)
    parser.add_argument("--log-mb", type=float, default=100.0)
    parser.add_argument("--log-gb", type=float, default=0.0, help="also time inspect on a log this large (linearity)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_large_") as tmp:
        root = Path(tmp)
        ok = bench_csv(root, args.csv_rows, args.repeat)
        ok &= bench_log(root, args.log_mb, args.repeat)
        if args.log_gb:
            bench_log(root, args.log_gb * 1000, 1, commands=("inspect",))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
