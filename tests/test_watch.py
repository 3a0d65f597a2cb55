"""watch: incremental reading, restarts, rotation, partial TensorBoard records, predictions, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from mnv4_postmortem.analyzer.engine.loader import load_pack
from mnv4_postmortem.analyzer.findings import Severity
from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.watch.live import LiveDiagnosis
from mnv4_postmortem.analyzer.watch.sources import LiveRunDir, complete_records
from mnv4_postmortem.analyzer.watch.tail import Tail

sys.path.insert(0, str(Path(__file__).parent))
from _watch_replay import replay  # noqa: E402

RUNS = Path(__file__).resolve().parents[1] / "fixtures" / "runs"


@pytest.fixture(scope="module")
def pack():
    return load_pack()


def _same_epochs(live_run, reference) -> None:
    assert list(live_run.epochs.index) == list(reference.epochs.index)
    for column in reference.epochs.columns:
        left = live_run.epochs[column].to_numpy(dtype=float)
        right = reference.epochs[column].to_numpy(dtype=float)
        assert ((left == right) | ((left != left) & (right != right))).all(), column


def _timeline(src: Path, dst: Path, pack, lines: int = 2):
    """Replay ``src`` into ``dst`` and diagnose at every new bit of progress, as ``watch`` does."""
    live_dir, live, seen, changes = LiveRunDir(dst), LiveDiagnosis(pack), None, []
    for _ in replay(src, dst, lines):
        live_dir.poll()
        if live_dir.progress() == seen:
            continue
        seen = live_dir.progress()
        run = live_dir.build_run()
        if run is not None:
            changes += live.update(run, live=not live_dir.run_ended())
    return live_dir, changes


# ------------------------------------------------------------------------------------------------ tail


def test_tail_reads_new_whole_lines_only(tmp_path):
    path = tmp_path / "train.log"
    path.write_bytes(b"one\ntw")
    tail = Tail(path)
    assert tail.read().data == b"one\n"
    assert tail.read() is None                      # nothing complete since
    with open(path, "ab") as handle:
        handle.write(b"o\nthree")
    chunk = tail.read()
    assert (chunk.data, chunk.offset, chunk.restarted) == (b"two\n", 4, False)


def test_tail_sees_truncation_and_replacement(tmp_path):
    path = tmp_path / "train.log"
    path.write_bytes(b"aaaa\nbbbb\n")
    tail = Tail(path)
    tail.read()
    path.write_bytes(b"c\n")                         # truncated in place (shorter than what was read)
    chunk = tail.read()
    assert chunk.restarted and chunk.data == b"c\n"
    replacement = tmp_path / "new.log"
    replacement.write_bytes(b"dddddddddddddd\n")
    os.replace(replacement, path)                    # another file under the same name
    chunk = tail.read()
    assert chunk.restarted and chunk.data == b"dddddddddddddd\n"


def test_complete_records_leaves_a_partial_record():
    record = (3).to_bytes(8, "little") + b"\0" * 4 + b"abc" + b"\0" * 4
    assert complete_records(record * 2) == 2 * len(record)
    assert complete_records(record + record[:10]) == len(record)
    assert complete_records(record + record[:-1]) == len(record)


# ------------------------------------------------------------------------------------------------ reading


@pytest.mark.parametrize("name", ["v1_ema_lag", "v1_resumed", "seed_mnv4"])
def test_live_reading_of_a_finished_run_equals_report_ingest(name):
    live_dir = LiveRunDir(RUNS / name)
    live_dir.poll()
    _same_epochs(live_dir.build_run(), load_run(RUNS / name))


def test_replayed_run_loses_no_record(tmp_path, pack):
    """Written a line at a time (summary.csv rows after each epoch) and read at every step."""
    live_dir, _ = _timeline(RUNS / "v1_resumed", tmp_path / "run", pack)
    run = live_dir.build_run()
    _same_epochs(run, load_run(RUNS / "v1_resumed"))
    assert len(run.steps) == len(load_run(RUNS / "v1_resumed").steps)


def test_resume_into_the_same_folder_is_one_run(tmp_path, pack):
    """v1_resumed: 5 epochs, then --resume for 10 (log appended, a second header in summary.csv)."""
    live_dir, changes = _timeline(RUNS / "v1_resumed", tmp_path / "run", pack)
    assert live_dir.build_run().epochs.index.max() == 9
    assert not [c for c in changes if c.finding is not None and c.finding.rule_id == "incomplete-run"]


def test_crash_mid_epoch_keeps_every_complete_record(tmp_path, pack):
    lines = (RUNS / "v1_ema_lag" / "train.log").read_bytes().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if b"Train: 5 [  10/31" in line)
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(RUNS / "v1_ema_lag" / "args.yaml", src / "args.yaml")
    crash = b"Traceback (most recent call last):\n  File \"train.py\", line 1\nRuntimeError: DataLoader worker killed\n"
    (src / "train.log").write_bytes(b"".join(lines[:cut]) + b"Train: 5 [  20/31 ( 6" + b"\n" + crash)
    live_dir, _ = _timeline(src, tmp_path / "run", pack)
    run = live_dir.build_run()
    _same_epochs(run, load_run(src))
    assert run.epochs["eval_top1"].notna().sum() == 5
    assert any(event.kind == "crash" for event in run.events)


def test_log_rotated_by_rename_is_followed(tmp_path, pack):
    """mv train.log train.log.1 while timm still writes to the open file: same file, same reader."""
    run_dir = tmp_path / "run"
    steps = replay(RUNS / "v1_ema_lag", run_dir, 3)
    live_dir = LiveRunDir(run_dir)
    for index, _ in enumerate(steps):
        live_dir.poll()
        if index == 20:
            os.rename(run_dir / "train.log", run_dir / "train.log.1")
            os.symlink(run_dir / "train.log.1", run_dir / "train.log")   # the writer keeps writing the renamed file
    live_dir.poll()
    _same_epochs(live_dir.build_run(), load_run(RUNS / "v1_ema_lag"))


def test_log_rotated_by_copytruncate_loses_and_doubles_nothing(tmp_path, pack):
    """logrotate copytruncate: the log is copied to train.log.1 and truncated; timm writes on from byte 0."""
    lines = (RUNS / "v1_ema_lag" / "train.log").read_bytes().splitlines(keepends=True)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(RUNS / "v1_ema_lag" / "args.yaml", run_dir / "args.yaml")
    live_dir = LiveRunDir(run_dir)
    half = len(lines) // 2
    log = run_dir / "train.log"
    for i in range(0, len(lines), 3):
        with open(log, "ab") as out:
            out.writelines(lines[i:i + 3])
        live_dir.poll()
        if i <= half < i + 3:
            shutil.copy(log, run_dir / "train.log.1")
            live_dir.poll()
            open(log, "wb").close()
        live_dir.poll()
    run = live_dir.build_run()
    reference = load_run(RUNS / "v1_ema_lag")
    assert list(run.epochs.index) == list(reference.epochs.index)
    assert run.epochs["eval_top1"].notna().sum() == reference.epochs["eval_top1"].notna().sum()
    assert len(run.steps) == len(reference.steps)


def test_tensorboard_file_flushed_mid_record(tmp_path):
    """A real SummaryWriter file, appended in pieces that end inside records: every scalar arrives once."""
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    from mnv4_postmortem.analyzer.ingest.tensorboard import read_event_file

    written = tmp_path / "written"
    writer = torch_tb.SummaryWriter(str(written))
    for step in range(40):
        writer.add_scalar("train/loss", 2.3 - step * 0.01, step)
        writer.add_scalar("val/top1", 10 + step * 0.5, step)
    writer.close()
    source = next(written.glob("events.out.tfevents*"))
    data = source.read_bytes()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    target = run_dir / source.name
    target.write_bytes(b"")
    live_dir = LiveRunDir(run_dir)
    for start in range(0, len(data), 37):          # 37 bytes: most pieces end mid-record
        with open(target, "ab") as out:
            out.write(data[start:start + 37])
        live_dir.poll()
    events = [s for s in live_dir.sources.values() if hasattr(s, "part")]
    assert len(events) == 1
    _, frame, issues = events[0].part()
    reference, _ = read_event_file(source)
    assert not issues
    assert len(frame) == len(reference) == 80
    assert frame["value"].round(5).tolist() == reference["value"].round(5).tolist()


def test_a_corrupt_record_in_a_followed_event_file_costs_that_record_only(tmp_path):
    """A data-CRC error mid-file while following: the live reader is the batch reader (issue 17's record
    recovery), so the bad record is named and every record after it is kept, as `report` keeps them."""
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    from mnv4_postmortem.analyzer.ingest.tensorboard import read_event_file

    written = tmp_path / "written"
    writer = torch_tb.SummaryWriter(str(written))
    for step in range(40):
        writer.add_scalar("train/loss", 2.3 - step * 0.01, step)
    writer.close()
    data = bytearray(next(written.glob("events.out.tfevents*")).read_bytes())
    offset = 0
    for _ in range(20):                                  # to the 21st record, then one byte of its payload
        offset += 16 + struct.unpack_from("<Q", data, offset)[0]
    data[offset + 12] ^= 0xFF                            # its data CRC fails; its length is intact
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    target = run_dir / "events.out.tfevents.1.host"
    target.write_bytes(b"")
    live_dir = LiveRunDir(run_dir)
    for start in range(0, len(data), 97):
        with open(target, "ab") as out:
            out.write(bytes(data[start:start + 97]))
        live_dir.poll()
    (events,) = [s for s in live_dir.sources.values() if hasattr(s, "part")]
    _, frame, issues = events.part()
    reference, reference_issues = read_event_file(target)
    assert len(issues) == len(reference_issues) == 1 and "CRC" in issues[0].message
    assert frame["step"].tolist() == reference["step"].tolist() and 38 <= len(frame) <= 39
    assert frame["step"].max() == 39                    # records after the bad one are kept


# ------------------------------------------------------------------------------------------------ diagnosis


def test_ema_lag_is_predicted_before_the_first_evaluation(tmp_path, pack):
    _, changes = _timeline(RUNS / "v1_ema_lag", tmp_path / "run", pack, lines=1)
    first = changes[0]
    assert (first.kind, first.finding.cause, first.predicted, first.epoch) == ("started", "ema-lag", True, None)
    assert first.finding.severity >= Severity.ERROR
    assert first.symptom_epoch == 0
    assert "96.4%" in first.finding.evidence[0].text       # 0.9999 ** 371 of the 12 scheduled epochs


@pytest.mark.parametrize("name", ["v1_healthy", "v09_healthy", "v06_healthy"])
def test_healthy_runs_raise_nothing_at_warning_or_above(tmp_path, pack, name):
    _, changes = _timeline(RUNS / name, tmp_path / "run", pack)
    loud = [(c.kind, c.finding.rule_id, c.epoch) for c in changes
            if c.finding is not None and c.finding.severity >= Severity.WARNING]
    assert loud == []


def test_recipe_only_rules_are_predictions(tmp_path, pack):
    """seed_mnv4 fine-tunes 160 px weights at 56 px: the rule fires on args.yaml alone."""
    _, changes = _timeline(RUNS / "seed_mnv4", tmp_path / "run", pack)
    first = {c.finding.cause: c for c in changes if c.kind == "started"}
    assert first["input-size-mismatch"].predicted and first["input-size-mismatch"].epoch is None
    assert first["ema-lag"].predicted


# ------------------------------------------------------------------------------------------------ CLI


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mnv4_postmortem", "watch", *args], capture_output=True,
                          text=True, timeout=timeout)


def _listing(folder: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_cli_fail_on_runs_the_hook_and_exits_1(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(RUNS / "v1_ema_lag", run)
    before = _listing(run)
    hook_out = tmp_path / "hook.json"
    done = _cli(str(run), "--fail-on", "error", "--on-finding", f"cat > {hook_out}", "--format", "json",
                "--interval", "0.1", "--poll")
    assert done.returncode == 1, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[-1]["event"] == "exit" and events[-1]["code"] == 1
    payload = json.loads(hook_out.read_text())
    assert payload["cause"] == "ema-lag" and payload["finding"]["severity"] == "error"
    assert _listing(run) == before                  # nothing written into the run directory


def test_cli_until_done_prints_the_report(tmp_path):
    done = _cli(str(RUNS / "v1_healthy"), "--until-done", "--idle", "1", "--interval", "0.1", "--poll")
    assert done.returncode == 0, done.stderr
    assert "done: timm printed its *** Best metric line" in done.stdout
    assert "fixtures/runs/v1_healthy" in done.stdout or "v1_healthy" in done.stdout


def test_cli_waits_for_the_directory(tmp_path):
    run = tmp_path / "later"
    process = subprocess.Popen([sys.executable, "-m", "mnv4_postmortem", "watch", str(run), "--until-done",
                                "--format", "json", "--interval", "0.1", "--max-interval", "0.2", "--poll"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(process.stdout.readline())     # printed before anything exists
        for _ in replay(RUNS / "v09_ema_lag", run, 20):
            pass
        out, err = process.communicate(timeout=600)
    finally:
        process.kill()
    events = [first] + [json.loads(line) for line in out.splitlines()]
    assert events[0]["event"] == "waiting", err
    assert any(e["event"] == "started" and e["cause"] == "ema-lag" for e in events)
    assert events[-1]["event"] == "report"


def test_the_analyzer_core_imports_no_trainer_library():
    root = Path(__file__).resolve().parents[1]
    for folder in ("analyzer", "rules", "mnv4_postmortem/cli"):
        for path in (root / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for library in ("lightning", "pytorch_lightning", "transformers"):
                assert f"import {library}" not in text and f"from {library}" not in text, (path, library)
