"""Benchmark: whole-process time of the light command `rules list` and of `report fixtures/runs/seed_mnv4`.

Issue 6 §5: `rules list` must not load the pipeline (pandas, ruptures, tensorboard). Prints the
median wall time of each command over N runs, as a ratio against two named baselines on the same
machine: a bare interpreter (`python -c pass`) and, when given with ``--baseline-tree DIR``, the
same command in another checkout (e.g. the pre-change commit db27d4a in a tmp worktree with its own
venv: ``git worktree add /tmp/base db27d4a`` then ``bash /work/wt/mkvenv.sh /tmp/base``).

    python bench/bench_cli_startup.py [--runs 7] [--baseline-tree /tmp/base]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    "rules list": ["rules", "list"],
    "report fixtures/runs/seed_mnv4": ["report", "fixtures/runs/seed_mnv4"],
}


def wall_time(argv: list[str], cwd: Path, runs: int) -> float:
    """Median whole-process seconds (start-up, imports, work, exit) of ``argv`` run in ``cwd``."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def python_of(tree: Path) -> str:
    venv = tree / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline-tree", type=Path, help="another checkout with its own .venv, e.g. db27d4a")
    args = parser.parse_args()

    bare = wall_time([sys.executable, "-c", "pass"], REPO, args.runs)
    print(f"baseline `python -c pass`: {bare:.3f} s (median of {args.runs})")
    for name, command in COMMANDS.items():
        ours = wall_time([python_of(REPO), "-m", "mnv4_postmortem", *command], REPO, args.runs)
        line = f"{name:<34} {ours:.3f} s  = {ours / bare:.1f}x python -c pass"
        if args.baseline_tree:
            theirs = wall_time([python_of(args.baseline_tree), "-m", "mnv4_postmortem", *command], args.baseline_tree, args.runs)
            line += f";  baseline tree {theirs:.3f} s -> {theirs / ours:.2f}x faster now"
        print(line)


if __name__ == "__main__":
    main()
