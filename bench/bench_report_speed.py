"""Benchmark: whole-process `report fixtures/runs/seed_mnv4` (text with timm installed, text with timm hidden,
html) and the import time of report's path, against `python -c pass` on the same machine, in one run.

Issue 15 targets, whole process on 2 cores: text <= 1.0 s wall and <= 200 MB peak memory, with and without
timm importable; html <= 1.6 s. Each command runs ``--runs`` times; the medians of wall time, CPU time
(user + sys of the process: the figure that holds on a machine loaded by other work, where wall time
does not) and peak resident memory (``ru_maxrss``) are printed, with the ratio to ``python -c pass``.
"Timm hidden" blocks ``import timm`` / ``import torch`` in the process (as on a machine without them).

``--baseline DIR`` measures the same commands with another checkout (its own ``.venv``, e.g. a
``git worktree`` of main) in the same run, each command alternating between the two, and prints the
ratio after/baseline: on a machine loaded by other work, that ratio and the CPU times are what hold.

Bytecode: every command runs once before it is timed, with ``PYTHONDONTWRITEBYTECODE`` removed from
its environment, so the package's ``.pyc`` files exist as after ``pip install`` (which compiles them).
A shell that sets that variable (some sandboxes do) otherwise pays compiling the package's source on
every run, about 0.3 s of CPU that no installed copy pays.

    python bench/bench_report_speed.py [--runs 5] [--baseline /path/to/main-checkout]
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


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(argv: list[str], cwd: Path = REPO) -> tuple[float, float, float]:
    """(wall s, user+sys s, peak RSS MB) of one whole process."""
    import time

    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def medians(samples: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    return tuple(statistics.median(s[i] for s in samples) for i in range(3))  # type: ignore[return-value]


def import_time(runs: int, python: str = sys.executable, cwd: Path = REPO) -> float:
    """Median seconds of `python -X importtime` for report's modules (top-level cumulative entries)."""
    totals = []
    code = "; ".join(f"import {m}" for m in REPORT_PATH_MODULES)
    for _ in range(runs):
        err = subprocess.run([python, "-X", "importtime", "-c", code], capture_output=True, text=True, cwd=cwd,
                             env=ENV, check=True).stderr
        total = 0
        for line in err.splitlines():
            parts = line.split("|")
            if len(parts) == 3 and parts[1].strip().isdigit() and parts[2].startswith(" ") and not parts[2].startswith("  "):
                total += int(parts[1])
        totals.append(total / 1e6)
    return statistics.median(totals)


def commands(py: str, seed: str, html_out: Path) -> dict[str, list[str]]:
    return {
        "python -c pass": [py, "-c", "pass"],
        "text, timm installed": [py, "-m", "mnv4_postmortem", "report", seed],
        "text, timm hidden": [py, "-c", HIDE_TIMM + CLI, "report", seed],
        "html": [py, "-m", "mnv4_postmortem", "report", "--format", "html", "-o", str(html_out), seed],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another checkout with its own .venv (e.g. main) to compare")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; cores: {os.cpu_count()}; "
          f"timm importable: {_timm_importable()}")
    checkouts = {"this": (sys.executable, REPO)}
    if args.baseline is not None:
        base = args.baseline.resolve()
        checkouts["baseline"] = (str(base / ".venv" / "bin" / "python"), base)
    with tempfile.TemporaryDirectory() as tmp:
        plans = {label: commands(py, SEED, Path(tmp) / f"{label}.html") for label, (py, _) in checkouts.items()}
        samples: dict[tuple[str, str], list] = {}
        for name in plans["this"]:
            for label in plans:  # warm-up: writes the .pyc files (see the module docstring)
                measure(plans[label][name], checkouts[label][1])
            for _ in range(args.runs):
                for label in plans:  # alternate, so both see the same load
                    samples.setdefault((label, name), []).append(measure(plans[label][name], checkouts[label][1]))
    bare_wall, bare_cpu, _ = medians(samples[("this", "python -c pass")])
    print(f"{'python -c pass':<22} wall {bare_wall:6.3f} s  cpu {bare_cpu:6.3f} s  (median of {args.runs})")
    for name in plans["this"]:
        if name == "python -c pass":
            continue
        wall, cpu, peak = medians(samples[("this", name)])
        wall_target, mem_target = TARGETS[name]
        verdict = f"wall target <= {wall_target} s: {'met' if wall <= wall_target else 'MISSED'}"
        if mem_target:
            verdict += f"; memory target <= {mem_target} MB: {'met' if peak <= mem_target else 'MISSED'}"
        print(f"{name:<22} wall {wall:6.3f} s = {wall / bare_wall:5.1f}x  cpu {cpu:6.3f} s = {cpu / bare_cpu:5.1f}x  "
              f"peak {peak:6.1f} MB   {verdict}")
        if "baseline" in plans:
            b_wall, b_cpu, b_peak = medians(samples[("baseline", name)])
            print(f"{'  baseline':<22} wall {b_wall:6.3f} s  cpu {b_cpu:6.3f} s  peak {b_peak:6.1f} MB   "
                  f"after/baseline: wall {wall / b_wall:4.2f}x  cpu {cpu / b_cpu:4.2f}x")
    for label, (py, cwd) in checkouts.items():
        imports = import_time(args.runs, py, cwd)
        print(f"{'imports of report path':<22} {imports:6.3f} s [{label}] (python -X importtime: {', '.join(REPORT_PATH_MODULES)})")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _timm_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("timm") is not None


if __name__ == "__main__":
    main()
