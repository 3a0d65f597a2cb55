"""Benchmark: the total CPU time of ``watch`` following a 1,000-epoch run written line by line, against
one ``report`` of the finished run (the baseline, same files, same machine, same script run).

A timm console log and summary.csv are generated from a real run's epoch (fixtures/runs/v1_healthy: its
Train/Test lines, renumbered, one block per epoch) and written into a temporary run directory a line at
a time, an epoch every ``--epoch-seconds``, while ``watch --until-done`` follows it in a child process.
Both commands run as child processes, so their CPU (user+sys) is measured whole: start-up, imports and
the rule pack included. Target: watch <= 3x report.

    .venv/bin/python bench/bench_watch.py [--epochs 1000] [--epoch-seconds 0.1]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGET = 3.0
SOURCE = Path(__file__).resolve().parents[1] / "fixtures" / "runs" / "v1_healthy"
_EPOCH_FIELD = re.compile(r"^(Train: )(\d+)")


def epoch_blocks(epochs: int) -> tuple[list[str], list[list[str]], str, list[str]]:
    """Header lines, one list of lines per epoch, the summary header, one summary row per epoch."""
    lines = (SOURCE / "train.log").read_text().splitlines(keepends=True)
    first_train = next(i for i, line in enumerate(lines) if line.startswith("Train: 0 "))
    second = next(i for i, line in enumerate(lines) if line.startswith("Train: 1 "))
    header, block = lines[:first_train], lines[first_train:second]
    tail = [line for line in lines if line.startswith("*** Best metric")]
    blocks = [[_EPOCH_FIELD.sub(lambda m: f"{m.group(1)}{e}", line) for line in block] for e in range(epochs)]
    blocks[-1] += tail
    header = [line.replace("Scheduled epochs: 12", f"Scheduled epochs: {epochs}") for line in header]
    rows = (SOURCE / "summary.csv").read_text().splitlines(keepends=True)
    summary_rows = [re.sub(r"^\d+", str(e), rows[1 + e % (len(rows) - 1)]) for e in range(epochs)]
    return header, blocks, rows[0], summary_rows


def write_run(run: Path, epochs: int, epoch_seconds: float, live: bool) -> None:
    header, blocks, summary_header, rows = epoch_blocks(epochs)
    args = (SOURCE / "args.yaml").read_text().replace("epochs: 12", f"epochs: {epochs}")
    run.mkdir(parents=True, exist_ok=True)
    (run / "args.yaml").write_text(args)
    with open(run / "train.log", "a") as log, open(run / "summary.csv", "a") as summary:
        log.writelines(header)
        summary.write(summary_header)
        for epoch, block in enumerate(blocks):
            started = time.monotonic()
            for line in block:
                log.write(line)
                if live:
                    log.flush()
            summary.write(rows[epoch])
            if live:
                summary.flush()
                time.sleep(max(0.0, epoch_seconds - (time.monotonic() - started)))


def child_cpu(command: list[str]) -> tuple[float, float, str]:
    """CPU seconds (user+sys) and wall seconds of one child process, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{command} failed ({done.returncode}): {done.stderr[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall, done.stdout


def watched(command: list[str], writer: threading.Thread) -> tuple[float, float, str]:
    """Start ``watch``; once it says it waits for the (not yet existing) folder, start the writer."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = process.stdout.readline()
    writer.start()
    out, err = process.communicate()
    writer.join()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode not in (0, 1):
        raise SystemExit(f"watch failed ({process.returncode}): {err[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall, first + out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--epoch-seconds", type=float, default=0.1)
    args = parser.parse_args()
    cli = [sys.executable, "-m", "mnv4_postmortem"]
    with tempfile.TemporaryDirectory() as tmp:
        finished = Path(tmp) / "finished"
        write_run(finished, args.epochs, 0.0, live=False)
        lines = sum(1 for _ in open(finished / "train.log"))
        report_cpu, report_wall, _ = child_cpu([*cli, "report", str(finished), "--format", "json"])

        live = Path(tmp) / "live"
        writer = threading.Thread(target=write_run, args=(live, args.epochs, args.epoch_seconds, True))
        watch = [*cli, "watch", str(live), "--until-done", "--idle", "5", "--format", "json", "--interval", "0.2",
                 "--max-interval", "1"]
        watch_cpu, watch_wall, out = watched(watch, writer)
        shutil.rmtree(live, ignore_errors=True)
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    done = next((e for e in events if e["event"] == "done"), {})
    ratio = watch_cpu / report_cpu
    print(f"run: {args.epochs} epochs, {lines} log lines, an epoch every {args.epoch_seconds:g} s, written line by line")
    print(f"baseline report (finished run): cpu {report_cpu:.2f} s (user+sys), wall {report_wall:.2f} s")
    print(f"watch --until-done (live):      cpu {watch_cpu:.2f} s (user+sys), wall {watch_wall:.2f} s; "
          f"{done.get('diagnoses')} diagnoses, {done.get('diagnose_cpu_s')} s CPU in them")
    print(f"ratio watch/report CPU: {ratio:.2f}x (target <= {TARGET:g}x) -> {'OK' if ratio <= TARGET else 'OVER'}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
