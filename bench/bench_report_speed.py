"""Benchmark: whole-process `report fixtures/runs/seed_mnv4` (text with timm installed, text with timm hidden,
html) and the import time of report's path, against `python -c pass` on the same machine, in one run.

Issue 15 targets, whole process on 2 cores: text <= 1.0 s wall and <= 200 MB peak memory, with and without
timm importable; html <= 1.6 s. Each command runs ``--runs`` times; the medians of wall time, CPU time
(user + sys of the process: the figure that holds on a machine loaded by other work, where wall time
does not) and peak resident memory (``ru_maxrss``) are printed, with the ratio to ``python -c pass``.
"Timm hidden" blocks ``import timm`` / ``import torch`` in the process (as on a machine without them).

    python bench/bench_report_speed.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEED = str(REPO / "fixtures" / "runs" / "seed_mnv4")
HIDE_TIMM = "import sys; sys.modules.update(timm=None, torch=None, torchvision=None); "
CLI = "sys.argv = ['mnv4-postmortem', *sys.argv[1:]]; from mnv4_postmortem.cli import main; main()"
REPORT_PATH_MODULES = ("mnv4_postmortem.cli", "mnv4_postmortem.analyzer.ingest", "mnv4_postmortem.analyzer.pipeline",
                       "mnv4_postmortem.analyzer.render.text")
TARGETS = {"text, timm installed": (1.0, 200), "text, timm hidden": (1.0, 200), "html": (1.6, None)}


def measure(argv: list[str]) -> tuple[float, float, float]:
    """(wall s, user+sys s, peak RSS MB) of one whole process."""
    import time

    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def medians(argv: list[str], runs: int) -> tuple[float, float, float]:
    samples = [measure(argv) for _ in range(runs)]
    return tuple(statistics.median(s[i] for s in samples) for i in range(3))  # type: ignore[return-value]


def import_time(runs: int) -> float:
    """Median seconds of `python -X importtime` for report's modules (top-level cumulative entries)."""
    totals = []
    code = "; ".join(f"import {m}" for m in REPORT_PATH_MODULES)
    for _ in range(runs):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                             check=True).stderr
        total = 0
        for line in err.splitlines():
            parts = line.split("|")
            if len(parts) == 3 and parts[1].strip().isdigit() and parts[2].startswith(" ") and not parts[2].startswith("  "):
                total += int(parts[1])
        totals.append(total / 1e6)
    return statistics.median(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    py = sys.executable
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; cores: {os.cpu_count()}; "
          f"timm importable: {_timm_importable()}")
    with tempfile.TemporaryDirectory() as tmp:
        commands = {
            "python -c pass": [py, "-c", "pass"],
            "text, timm installed": [py, "-m", "mnv4_postmortem", "report", SEED],
            "text, timm hidden": [py, "-c", HIDE_TIMM + CLI, "report", SEED],
            "html": [py, "-m", "mnv4_postmortem", "report", "--format", "html", "-o", str(Path(tmp) / "r.html"), SEED],
        }
        bare_wall, bare_cpu, _ = medians(commands.pop("python -c pass"), args.runs)
        print(f"{'python -c pass':<22} wall {bare_wall:6.3f} s  cpu {bare_cpu:6.3f} s  (median of {args.runs})")
        for name, argv in commands.items():
            wall, cpu, peak = medians(argv, args.runs)
            wall_target, mem_target = TARGETS[name]
            verdict = f"wall target <= {wall_target} s: {'met' if wall <= wall_target else 'MISSED'}"
            if mem_target:
                verdict += f"; memory target <= {mem_target} MB: {'met' if peak <= mem_target else 'MISSED'}"
            print(f"{name:<22} wall {wall:6.3f} s = {wall / bare_wall:5.1f}x  cpu {cpu:6.3f} s = {cpu / bare_cpu:5.1f}x  "
                  f"peak {peak:6.1f} MB   {verdict}")
    imports = import_time(args.runs)
    print(f"{'imports of report path':<22} {imports:6.3f} s (python -X importtime: {', '.join(REPORT_PATH_MODULES)})")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _timm_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("timm") is not None


if __name__ == "__main__":
    main()
