"""Issue 17 items 9 and 10: every discovered run is listed (unreadable ones with their error), a worker pool
that cannot start falls back, an unreachable Dask scheduler is a usage error (exit 2), and Ctrl-C leaves one
consistent set of outputs (exit 130), with nothing stale from an earlier batch beside it."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURE_RUNS
from mnv4_postmortem.analyzer.batch.discover import find_runs
from mnv4_postmortem.analyzer.batch.rows import RunTask, analyze_path
from mnv4_postmortem.cli import cli

CLI = [sys.executable, "-m", "mnv4_postmortem"]


def test_an_unlistable_folder_is_a_run_with_its_error(tmp_path, monkeypatch):
    # Root can read anything, so the permission error is injected where os.walk lists folders.
    shutil.copytree(FIXTURE_RUNS / "v1_healthy", tmp_path / "good")
    (tmp_path / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = find_runs([tmp_path])
    assert found == [tmp_path / "good", tmp_path / "locked"]
    row = analyze_path(str(tmp_path / "locked"), RunTask())
    assert row.error and "Permission denied" in row.error and "locked" in row.error


def test_a_run_whose_only_log_cannot_be_read_is_listed_everywhere(tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(FIXTURE_RUNS / "v1_healthy", root / "good")
    (root / "lost").mkdir()
    (root / "lost" / "train.log").symlink_to(tmp_path / "scratch-gone" / "train.log")  # log on a vanished disk
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["batch", str(root), "--out", str(out), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    lost = next(line for line in result.stdout.splitlines() if "lost" in line)
    assert "unusable" in lost and "train.log" in lost
    with open(out / "runs.csv", newline="", encoding="utf-8") as handle:
        rows = {r["name"]: r for r in csv.DictReader(handle)}
    assert set(rows) == {"runs/good", "runs/lost"} and "train.log" in rows["runs/lost"]["error"]
    assert "runs/lost" in (out / "index.html").read_text(encoding="utf-8")


def test_a_pool_that_cannot_start_falls_back_to_one_process(tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(FIXTURE_RUNS / "v1_healthy", root / "a")
    shutil.copytree(FIXTURE_RUNS / "v1_ema_lag", root / "b")
    # The fork server's socket lives in TMPDIR; a path over AF_UNIX's 108 bytes cannot be bound.
    long_tmp = tmp_path / ("x" * 60) / ("y" * 60)
    long_tmp.mkdir(parents=True)
    env = {**os.environ, "TMPDIR": str(long_tmp)}
    result = subprocess.run([*CLI, "batch", str(root), "--jobs", "2"], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert "worker pool could not start" in result.stderr and "one run at a time" in result.stderr
    assert len(result.stdout.splitlines()) == 2 and "ema-lag" in result.stdout


def test_an_unreachable_dask_scheduler_is_a_usage_error(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    from mnv4_postmortem.analyzer.batch import execute

    monkeypatch.setattr(execute, "DASK_CONNECT_TIMEOUT", "1s")
    shutil.copytree(FIXTURE_RUNS / "v1_healthy", tmp_path / "runs" / "a")
    out = tmp_path / "out"
    (out).mkdir()
    (out / "index.html").write_text("from an earlier batch")
    result = CliRunner().invoke(cli, ["batch", str(tmp_path / "runs"), "--out", str(out),
                                      "--dask-scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 2, result.output
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output
    # nothing half-written: the earlier outputs are as they were, no staging folder left
    assert (out / "index.html").read_text() == "from an earlier batch"
    assert [p.name for p in out.iterdir()] == ["index.html"]


def _staged_rows(out: Path) -> int:
    staging = [p for p in out.glob(".mnv4-batch-*/runs.jsonl")]
    return sum(1 for _ in staging[0].open()) if staging else 0


def test_ctrl_c_writes_the_finished_rows_as_one_set_and_exits_130(tmp_path):
    root = tmp_path / "runs"
    names = ["v1_healthy", "v1_ema_lag", "v09_healthy", "v09_ema_lag", "v06_healthy", "v06_ema_lag"]
    for i in range(4):  # 24 runs: far more than finish before the interrupt
        for name in names:
            shutil.copytree(FIXTURE_RUNS / name, root / f"{name}_{i}")
    out = tmp_path / "out"
    (out / "runs").mkdir(parents=True)
    (out / "index.html").write_text("STALE index from an earlier batch")
    (out / "runs" / "old_run-0123456789.html").write_text("STALE report")
    (out / "runs" / "my-notes.txt").write_text("the user's own file")  # not ours: never touched
    proc = subprocess.Popen([*CLI, "batch", str(root), "--out", str(out), "--jobs", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while _staged_rows(out) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert proc.poll() is None, "the batch ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert 2 <= len(records) < 24
    with open(out / "runs.csv", newline="", encoding="utf-8") as handle:
        assert [r["path"] for r in csv.DictReader(handle)] == [r["path"] for r in records]
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "STALE" not in index
    for record in records:
        assert Path(record["name"]).name in index
    # every report belongs to a row, every row's report is there; the stale one is gone, the user's file kept
    reports = sorted(p.name for p in (out / "runs").glob("*.html"))
    assert reports == sorted(r["report"] for r in records)
    assert (out / "runs" / "my-notes.txt").read_text() == "the user's own file"
    assert not list(out.glob(".mnv4-batch-*"))
    assert len(stdout.splitlines()) == len(records)
    assert re.search(r"interrupted: \d+ of 24 run", stderr)
