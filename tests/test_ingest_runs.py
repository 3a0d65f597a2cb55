"""Ingest end to end (discovery + parsers + merge) on real runs: timm's own, and other people's.

Epoch counts are checked against what the files themselves hold, counted independently here with
the csv module / a plain scan, not with the parsers under test.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from conftest import FIXTURE_RUNS, REAL_RUNS, TIMM_RUNS
from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.ingest.discover import discover
from mnv4_postmortem.analyzer.model import IngestError

FIXTURES = sorted(p for p in FIXTURE_RUNS.iterdir() if p.is_dir())
SHARED_RUNS = sorted(p for root in (TIMM_RUNS, REAL_RUNS) if root.is_dir() for p in root.iterdir() if p.is_dir())


def csv_epochs(path: Path) -> set[int]:
    """Epochs in a summary.csv: every row whose first cell is an integer (headers and junk skipped)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    epochs = set()
    for row in csv.reader(io.StringIO(text)):
        if row and re.fullmatch(r"\d+", row[0].strip()) and len(row) > 2:
            epochs.add(int(row[0]))
    return epochs


def log_epochs(path: Path) -> set[int]:
    """Epochs with Train: lines in a console log."""
    pattern = re.compile(r"Train: (\d+) \[")
    with open(path, encoding="utf-8", errors="replace") as handle:
        return {int(m.group(1)) for line in handle for m in [pattern.search(line)] if m}


def expected_epochs(run_dir: Path) -> set[int]:
    summary = run_dir / "summary.csv"
    if summary.exists():
        return csv_epochs(summary)
    epochs: set[int] = set()
    for path in run_dir.iterdir():
        if path.suffix in (".log", ".txt", ".out"):
            epochs |= log_epochs(path)
    return epochs


@pytest.mark.parametrize("run_dir", FIXTURES + SHARED_RUNS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_run_ingests_and_epoch_counts_match(run_dir):
    run = load_run(run_dir)
    expected = expected_epochs(run_dir)
    if expected:
        assert set(run.epochs.index) >= expected
        assert len(run.epochs) == len(expected) or not (run_dir / "summary.csv").exists()
    else:  # TensorBoard-only runs
        assert run.n_epochs > 0
    assert run.epoch_refs.shape == run.epochs.shape
    for issue in run.issues:
        assert issue.source.path, issue  # every warning names its file


def test_discovery_recognises_logs_by_content_not_name(tmp_path):
    (tmp_path / "slurm-1234.out").write_bytes((FIXTURE_RUNS / "v1_ema_lag" / "train.log").read_bytes())
    (tmp_path / "notes.txt").write_text("some notes\n")
    (tmp_path / "checkpoint-3.pth.tar").write_bytes(b"\x80\x02")
    kinds = {f.rel: f.kind for f in discover(tmp_path).files}
    assert kinds == {"slurm-1234.out": "console_log", "notes.txt": "other", "checkpoint-3.pth.tar": "checkpoint"}


def test_log_only_run_gets_epochs_from_the_log(tmp_path):
    (tmp_path / "output.txt").write_bytes((FIXTURE_RUNS / "v1_ema_lag" / "train.log").read_bytes())
    run = load_run(tmp_path)
    assert run.n_epochs == 12
    assert run.series("eval_top1_ema").iloc[-1] == pytest.approx(9.667, abs=1e-3)
    assert run.series("eval_top1").iloc[-1] == pytest.approx(9.667, abs=1e-3)  # timm reports the EMA's
    assert run.config.effective["input_size"] == (3, 56, 56)


def test_lr_null_is_resolved_from_the_scaling_rule(real_runs):
    run = load_run(real_runs / "vuthehuy-convnext-cifar100-overfit")
    assert run.config.args["lr"] is None
    assert run.config.get("lr") == pytest.approx(0.1 * 32 / 256)
    assert "lr_base" in run.config.effective_sources["lr"]


def test_resumed_run_keeps_latest_rows_and_records_the_resume():
    run = load_run(FIXTURE_RUNS / "v1_resumed")
    assert list(run.epochs.index) == list(range(10))
    assert sum(1 for e in run.events if e.kind == "resume") >= 1


def test_summary_csv_wins_and_a_disagreeing_log_is_reported(tmp_path):
    source = FIXTURE_RUNS / "v1_healthy"
    for name in ("args.yaml", "train.log"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    rows = (source / "summary.csv").read_text().splitlines()
    cells = rows[3].split(",")
    cells[3] = "99.0"  # eval_top1 of epoch 2 no longer matches the log's Test: line
    rows[3] = ",".join(cells)
    (tmp_path / "summary.csv").write_text("\n".join(rows) + "\n")
    run = load_run(tmp_path)
    assert run.epochs.loc[2, "eval_top1"] == 99.0
    assert any("eval_top1 for epoch 2" in i.message for i in run.issues)


def test_nothing_usable_raises_ingest_error(tmp_path):
    (tmp_path / "readme.md").write_text("hello")
    with pytest.raises(IngestError) as info:
        load_run(tmp_path)
    assert str(tmp_path) in str(info.value)


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("parser", ["console_log", "summary_csv", "args_yaml", "tensorboard"])
def test_every_parser_refuses_a_fifo_instead_of_blocking(tmp_path, parser):
    """All parsers open files through one helper; a FIFO would otherwise block open() forever."""
    import os

    from mnv4_postmortem.analyzer.ingest import args_yaml, console_log, summary_csv, tensorboard

    read = {"console_log": console_log.parse_console_log, "summary_csv": summary_csv.parse_summary_csv,
            "args_yaml": args_yaml.parse_args_yaml, "tensorboard": tensorboard.read_event_file}[parser]
    fifo = tmp_path / "input"
    os.mkfifo(fifo)
    with pytest.raises(IngestError, match="not a regular file"):
        read(fifo)
