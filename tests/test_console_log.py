"""Tests for the timm console-log parser, on real timm output first.

Expected values come from the same run's other files (summary.csv, args.yaml), from the log text
read by the simplest possible means, or from the labels of the fixture runs (LABELS.md). Short
hand-written lines (quoted from timm-formats.md) are used only for formats no real log here has,
and for bad input.
"""

from __future__ import annotations

import csv
import math
import os
import random
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnv4_postmortem.analyzer.ingest import console_log
from mnv4_postmortem.analyzer.ingest.console_log import (
    ConsoleLog, parse_console_log, sniff_console_log)
from mnv4_postmortem.analyzer.model import STEP_COLUMNS, IngestError

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "fixtures" / "runs"
REAL = REPO.parent / "shared" / "real-runs"
FIXTURE_LOGS = sorted(RUNS.glob("*/train.log"))



# -- helpers ---------------------------------------------------------------------------------

def version_of(run: Path) -> tuple[int, int, int]:
    """The timm version a fixture run was made with, from fixtures/runs/LABELS.md. "1.0" there is
    the task-based train.py (its first row says so), i.e. 1.0.23 or later."""
    table = dict(re.findall(r"^\| ([\w.-]+) \| ([\d.]+)", (RUNS / "LABELS.md").read_text(), re.M))
    parts = tuple(int(x) for x in table[run.name].split("."))
    return parts if len(parts) == 3 else (1, 0, 23)


def layout_for(version: tuple[int, int, int]) -> str:
    """timm-formats.md §3: which Train-line layout a version prints."""
    if version <= (0, 4, 12):
        return "A"
    if version < (0, 9, 0):
        return "B"
    return "C" if version <= (1, 0, 7) else "D"


def version_in(text: str, version: tuple[int, int, int]) -> bool:
    parse = lambda v: tuple(int(x) for x in v.split("."))  # noqa: E731
    if text.startswith(">="):
        return version >= parse(text[2:])
    if text.startswith("<="):
        return version <= parse(text[2:])
    low, _, high = text.partition("-")
    return parse(low) <= version <= parse(high or low)


def summary_rows(path: Path) -> dict[int, dict[str, float]]:
    """summary.csv by epoch, the latest row winning (a resumed run repeats its header)."""
    rows: dict[int, dict[str, float]] = {}
    with open(path, newline="") as stream:
        header = None
        for record in csv.reader(stream):
            if not record:
                continue
            if record[0] == "epoch":
                header = record
                continue
            rows[int(record[0])] = {key: float(value) for key, value in zip(header, record) if key != "epoch"}
    return rows


def latest_evals(log: ConsoleLog, pass_name: str) -> pd.DataFrame:
    frame = log.evals[log.evals["pass"] == pass_name]
    return frame.sort_values(["epoch", "segment"]).groupby("epoch").tail(1).set_index("epoch")


def close(actual: float, expected: float, decimals: int) -> bool:
    """Equal within the printing precision of the log (half a unit in the last decimal)."""
    if math.isnan(expected) or math.isnan(actual):
        return math.isnan(expected) and math.isnan(actual)
    return abs(actual - expected) <= 0.5 * 10 ** -decimals + 1e-9 * abs(expected)


def frames_equal(a: ConsoleLog, b: ConsoleLog) -> bool:
    return a.steps.equals(b.steps) and a.evals.equals(b.evals)


def write(tmp_path: Path, content: bytes | str, name: str = "train.log") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def real_log(run: str, name: str) -> Path:
    path = REAL / run / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


# -- the fixture runs (timm 0.6.13, 0.9.16, 1.0.x) ---------------------------------------------

@pytest.fixture(scope="module", params=FIXTURE_LOGS, ids=lambda p: p.parent.name)
def run(request) -> tuple[Path, ConsoleLog]:
    return request.param.parent, parse_console_log(request.param, "train.log")


def test_one_step_row_per_train_line(run):
    folder, log = run
    lines = (folder / "train.log").read_text().splitlines()
    train_lines = [number for number, text in enumerate(lines, 1) if text.startswith("Train:")]
    assert list(log.steps.columns) == list(STEP_COLUMNS) + ["segment", "src_line"]
    assert log.steps["src_line"].tolist() == train_lines
    for row in log.steps.itertuples():
        assert lines[row.src_line - 1].startswith(f"Train: {row.epoch} [")
    assert (log.steps["update"] == log.steps["epoch"] * log.steps["per_epoch"] + log.steps["idx"]).all()
    assert log.n_lines == len(lines)


def test_evals_match_summary_csv(run):
    folder, log = run
    summary = summary_rows(folder / "summary.csv")
    ema = (log.evals["pass"] == "ema").any()
    evals = latest_evals(log, "ema" if ema else "model")   # timm reports the EMA pass when there is one
    assert sorted(evals.index) == sorted(summary)
    decimals = 4 if version_of(folder) < (0, 9, 0) else 3
    for epoch, expected in summary.items():
        for column in ("eval_loss", "eval_top1", "eval_top5"):
            assert close(evals.loc[epoch, column], expected[column], decimals), (epoch, column)
    if ema:   # both passes of every epoch are kept
        assert len(latest_evals(log, "model")) == len(evals)


def test_train_loss_and_lr_match_summary_csv(run):
    folder, log = run
    summary = summary_rows(folder / "summary.csv")
    steps = log.steps.sort_values("src_line").groupby(["segment", "epoch"]).tail(1).set_index("epoch")
    steps = steps[~steps.index.duplicated(keep="last")]
    for epoch, expected in summary.items():
        # the last Train line's running average is the epoch mean, printed with 3 significant digits, when that
        # line is the epoch's last update (with --log-interval 5 on 12 updates, 0.9.16 last prints update 10)
        if steps.loc[epoch, "idx"] != steps.loc[epoch, "per_epoch"] - 1:
            continue
        assert steps.loc[epoch, "train_loss_avg"] == pytest.approx(expected["train_loss"], rel=6e-3, abs=1e-6, nan_ok=True)
        if "lr" in expected:   # summary.csv has lr from v0.8.2; the log prints LR with '%.3e'
            assert steps.loc[epoch, "lr"] == pytest.approx(expected["lr"], rel=1e-3)


def test_info_agrees_with_args_yaml(run):
    folder, log = run
    args = yaml.safe_load((folder / "args.yaml").read_text())
    info = log.info
    assert info["model"] == args["model"]
    assert info["scheduled_epochs"] == args["epochs"] + args["cooldown_epochs"]
    assert info["data_config"]["input_size"] == (3, args["img_size"], args["img_size"])
    assert info["world_size"] == 1 and info["distributed"] is False
    assert info["amp"] == ("native" if args["amp"] else "off")
    assert (log.lr_calc is None) == (args["lr"] is not None)
    if "optimizer" in info:   # v1.0.12+ logs the optimizer it created
        assert info["optimizer"]["name"] == args["opt"]
        assert info["optimizer"]["params"]["lr"] == pytest.approx(args["lr"])
    assert set(log.info_refs) == set(info)
    lines = (folder / "train.log").read_text().splitlines()
    assert args["model"] in lines[log.info_refs["model"].line - 1]


def test_version_and_layout(run):
    folder, log = run
    version = version_of(folder)
    assert log.timm_version is not None and version_in(log.timm_version, version), log.timm_version
    assert log.layout == layout_for(version)
    assert log.throughput_bug is False
    assert log.family.startswith(f"timm log layout {log.layout}")


def test_best_metric_event_matches_the_log(run):
    folder, log = run
    text = (folder / "train.log").read_text()
    expected = [(float(v), int(e)) for v, e in re.findall(r"\*\*\* Best metric: (\S+) \(epoch (\d+)\)", text)]
    events = [(e.data["value"], e.epoch) for e in log.events if e.kind == "best_metric"]
    assert events == expected
    if expected:  # a run killed before its end prints no "*** Best metric"
        assert (log.info["best_metric"], log.info["best_epoch"]) == expected[-1]


def test_bulk_and_line_by_line_paths_agree(run):
    folder, log = run
    slow = console_log.parse_console_log(folder / "train.log", "train.log", fast=False)
    small_chunks = console_log.parse_console_log(folder / "train.log", "train.log", chunk_size=1000)
    assert frames_equal(log, slow)
    assert frames_equal(log, small_chunks)
    assert log.info == slow.info and log.events == slow.events
    assert log.layout == slow.layout and log.timm_version == slow.timm_version


def test_library_warnings_are_events_and_deduplicated():
    log = parse_console_log(RUNS / "v09_ema_lag" / "train.log")
    warnings = [e for e in log.events if e.kind == "warning"]
    assert [w.data["category"] for w in warnings] == ["FutureWarning", "FutureWarning"]
    assert "torch.jit.script" in warnings[0].message and warnings[0].source.line == 1


def test_resumed_run_is_a_new_segment():
    log = parse_console_log(RUNS / "v1_resumed" / "train.log")
    resumes = [e for e in log.events if e.kind == "resume"]
    assert len(resumes) == 1
    resume = resumes[0]
    assert resume.data["segment"] == 1 and resume.data["checkpoint_epoch"] == 4 and resume.epoch == 5
    text = (RUNS / "v1_resumed" / "train.log").read_text().splitlines()
    assert "Loaded checkpoint" in text[resume.source.line - 1]
    assert set(log.steps["segment"]) == {0, 1}
    first_run = log.steps[log.steps["segment"] == 0]
    assert first_run["src_line"].max() < resume.source.line < log.steps[log.steps["segment"] == 1]["src_line"].min()
    assert log.evals.groupby("segment")["epoch"].agg(list).to_dict() == {0: [0, 1, 2, 3, 4], 1: [5, 6, 7, 8, 9]}
    assert log.info["resume_epoch"] == 4 and log.info["scheduled_epochs"] == 10   # the latest run wins


def test_nan_values_give_one_nonfinite_event_per_metric():
    log = parse_console_log(RUNS / "v1_nan" / "train.log")
    summary = summary_rows(RUNS / "v1_nan" / "summary.csv")
    first_nan = min(epoch for epoch, row in summary.items() if math.isnan(row["eval_loss"]))
    events = [e for e in log.events if e.kind == "nonfinite"]
    assert [(e.data["metric"], e.epoch) for e in events] == [("eval_loss", first_nan)]
    assert log.evals.set_index("epoch")["eval_loss"].isna().sum() == sum(math.isnan(r["eval_loss"]) for r in summary.values())
    # '#.3g' prints large losses in exponent form; those become numbers too
    text = (RUNS / "v1_nan" / "train.log").read_text()
    assert "Loss: 4.33e+03 (4.01e+04)" in text
    assert 4330.0 in log.steps["train_loss"].tolist() and 40100.0 in log.steps["train_loss_avg"].tolist()


# -- public runs by other people (read in place) ----------------------------------------------

def test_logger_prefixed_log_with_all_ranks():
    path = real_log("eileen-resnet50-a3-amp", "20220209-031811ResNetv1.5AMP.log")
    log = parse_console_log(path)
    text = path.read_text().splitlines()
    assert len(log.steps) == sum("Train:" in line for line in text)
    summary = summary_rows(path.parent / "summary.csv")
    evals = latest_evals(log, "model")
    assert sorted(evals.index) == sorted(summary)
    for epoch, row in summary.items():
        assert close(evals.loc[epoch, "eval_top1"], row["eval_top1"], 4)
    # this fork prints no Loss/LR in its Train lines: NaN there, and no "nonfinite" alarm for it
    assert log.steps["train_loss"].isna().all() and log.steps["samples_per_sec"].notna().all()
    assert not [e for e in log.events if e.kind == "nonfinite"]
    assert log.info["world_size"] == 4 and log.info["amp"] == "native" and log.info["model"] == "resnet50"
    assert log.info["data_config"]["input_size"] == (3, 160, 160)
    assert log.info["best_metric"] == pytest.approx(max(r["eval_top1"] for r in summary.values()), abs=1e-6)


def test_log_without_final_newline_keeps_its_complete_last_line():
    path = real_log("eileen-resnet50-a3-fp32", "20220118ResNetV1.5FP32.log")
    assert not path.read_bytes().endswith(b"\n")
    log = parse_console_log(path)
    assert log.events[-1].kind == "best_metric" and log.events[-1].source.line == log.n_lines
    assert not [e for e in log.events if e.kind == "truncated"]
    assert log.layout == "B" and version_in(log.timm_version, (0, 6, 0))
    summary = summary_rows(path.parent / "summary.csv")
    evals = latest_evals(log, "model")
    for epoch, row in summary.items():
        assert close(evals.loc[epoch, "eval_loss"], row["eval_loss"], 4)


def test_timestamped_log_with_extra_train_fields():
    path = real_log("repghost-1.0x-in1k-300ep", "train.log")
    log = parse_console_log(path)
    text = path.read_text().splitlines()
    train = [line for line in text if "Train:" in line]
    assert len(log.steps) == len(train)
    first = re.search(r"Loss:\s+(\S+) \((\S+)\).*Time: (\S+)s,\s+(\S+)/s.*LR: (\S+)\s+Data: (\S+)", train[0])
    assert log.steps.iloc[0][["train_loss", "train_loss_avg", "batch_time", "samples_per_sec", "lr", "data_time"]].tolist() \
        == [float(v) for v in first.groups()]
    assert log.layout == "A"
    ema = latest_evals(log, "ema")
    assert len(ema) == len(latest_evals(log, "model")) == sum(line.startswith("Test (EMA): [  48/48]") for line in text)
    best = [e for e in log.events if e.kind == "best_metric"][-1]
    # the checkpoint metric is the EMA top-1 (4 decimals in the log)
    assert ema["eval_top1"].idxmax() == best.epoch
    assert close(ema["eval_top1"].max(), best.data["value"], 4)


def test_train_only_log():
    path = real_log("fugaku-deit-tiny-gb4096-healthy", "output.log")
    log = parse_console_log(path)
    assert len(log.evals) == 0 and list(log.evals.columns) == list(console_log.EVAL_COLUMNS)
    assert len(log.steps) == sum(line.startswith("Train:") for line in path.read_text().splitlines())
    assert (log.steps["per_epoch"] == 312).all() and log.steps["update"].is_monotonic_increasing
    assert log.steps["epoch"].max() + 1 == log.info["scheduled_epochs"]
    assert log.layout == "A"


@pytest.mark.parametrize("name", ["eileen-resnet50-a3-amp", "eileen-resnet50-a3-fp32", "repghost-1.0x-in1k-300ep",
                                  "fugaku-deit-tiny-gb4096-healthy"])
def test_real_logs_bulk_and_line_paths_agree(name):
    folder = REAL / name
    logs = sorted(p for p in folder.glob("*.log") if p.name != "eval.log") if folder.exists() else []
    if not logs:
        pytest.skip(f"{folder} is not available")
    fast = parse_console_log(logs[0])
    assert frames_equal(fast, console_log.parse_console_log(logs[0], fast=False))
    assert frames_equal(fast, console_log.parse_console_log(logs[0], chunk_size=50_000))


# -- formats no real log here has: single lines quoted from timm-formats.md -----------------

LAYOUT_LINES = {
    "A": "Train: 12 [ 550/1251 ( 44%)]  Loss:  3.141593 (3.2718)  Time: 0.412s, 2485.44/s  (0.398s, 2572.86/s)  LR: 3.457e-03  Data: 0.012 (0.035)",
    "B": "Train: 12 [ 550/1251 ( 44%)]  Loss: 3.142 (3.27)  Time: 0.412s, 2485.44/s  (0.398s, 2572.86/s)  LR: 3.457e-03  Data: 0.012 (0.035)",
    # the §3 example of layout C ([  50/6672 (  1%)]) prints the same percent under C and D rules; this
    # line of the 0.9.16 fixture run does not
    "C": "Train: 0 [   0/31 (  0%)]  Loss: 2.70 (2.70)  Time: 0.352s,   91.00/s  (0.352s,   91.00/s)  LR: 1.000e-05  Data: 0.106 (0.106)",
    "D": "Train: 0 [   0/73 (  1%)]  Loss: 6.86 (6.86)  Time: 9.575s,   13.37/s  (9.575s,   13.37/s)  LR: 1.000e-05  Data: 0.844 (0.844)",
}


@pytest.mark.parametrize("layout", sorted(LAYOUT_LINES))
def test_train_layouts(tmp_path, layout):
    line = LAYOUT_LINES[layout]
    log = parse_console_log(write(tmp_path, line + "\n"))
    assert log.layout == layout
    numbers = re.findall(r"\d+\.\d+e[-+]\d+|\d+\.\d+|\d+", line)
    row = log.steps.iloc[0]
    assert row[["epoch", "idx", "per_epoch"]].tolist() == [int(numbers[0]), int(numbers[1]), int(numbers[2])]
    assert row["train_loss"] == float(numbers[4]) and row["lr"] == float(re.search(r"LR: (\S+)", line).group(1))
    assert version_in(log.timm_version, {"A": (0, 4, 12), "B": (0, 6, 13), "C": (0, 9, 5), "D": (1, 0, 20)}[layout])


def test_prec_era_and_old_test_lines(tmp_path):
    content = (LAYOUT_LINES["A"] + "\n"
               "Test: [  50/97]  Time: 0.105 (0.132)  Loss:  1.2346 (1.3457)  Prec@1: 71.8750 (70.1234)  Prec@5: 90.6250 (89.9876)\n"
               "Test: [  97/97]  Time: 0.105 (0.132)  Loss:  1.2346 (1.3500)  Prec@1: 71.8750 (70.5000)  Prec@5: 90.6250 (90.0000)\n")
    log = parse_console_log(write(tmp_path, content))
    assert log.evals[["epoch", "pass", "eval_loss", "eval_top1", "eval_top5"]].values.tolist() == [[12, "model", 1.35, 70.5, 90.0]]
    assert log.timm_version == "<=0.1.20"


def test_throughput_bug_is_detected_and_corrected(tmp_path):
    bug = "Train: 12 [ {:>3}/1251 ( 44%)]  Loss: 3.14 (3.27)  Time: 0.412s,    2.43/s  (0.398s,    2.51/s)  LR: 3.457e-03  Data: 0.012 (0.035)\n"
    lines = "".join(bug.format(i) for i in range(0, 500, 50))
    log = parse_console_log(write(tmp_path, lines))
    assert log.throughput_bug and log.steps["samples_per_sec"].isna().all()
    assert log.timm_version == "1.0.16-1.0.19"
    calc = "Learning rate (0.4) calculated from base learning rate (0.1) and effective global batch size (1024) with linear scaling.\n"
    log = parse_console_log(write(tmp_path, calc + lines))
    assert log.lr_calc.lr == 0.4 and log.lr_calc.lr_base == 0.1 and log.lr_calc.global_batch == 1024
    assert log.lr_calc.scaling == "linear" and log.lr_calc.source.line == 1
    assert log.steps["samples_per_sec"].tolist() == pytest.approx([2.43 * 1024] * 10)
    # the same numbers as samples/s in a run whose version rules the bug out are left alone
    healthy = parse_console_log(write(tmp_path, "ClassificationTask: criterion=SoftTargetCrossEntropy\n" + lines))
    assert not healthy.throughput_bug and healthy.steps["samples_per_sec"].iloc[0] == 2.43


def test_prefixes_progress_bars_colours_and_crlf(tmp_path):
    test_line = "Test (EMA): [ 195/195]  Time-Batch: 0.024 (0.176)  Loss:  6.8138 (6.9122)  Acc@1:  0.0000 ( 0.1000)  Acc@5:  0.0000 ( 0.5000)"
    content = ("[rank0]: " + LAYOUT_LINES["C"] + "\r\n"
               "epoch 0:  10%|#         | 1/10\repoch 0: 100%|##########| 10/10\r" + LAYOUT_LINES["C"] + "\r\n"
               "\x1b[32m" + LAYOUT_LINES["C"] + "\x1b[0m\r\n"
               "2022-12-07 05:30:05,228 -     train: [    INFO] - " + test_line + "\r\n"
               "2022-12-07 05:30:06,000 -     train: [ WARNING] - something odd\r\n")
    log = parse_console_log(write(tmp_path, content))
    assert log.steps["src_line"].tolist() == [1, 2, 3]
    assert log.steps["train_loss"].tolist() == [2.70] * 3
    assert log.evals[["pass", "eval_loss", "eval_top1", "src_line"]].values.tolist() == [["ema", 6.9122, 0.1, 4]]
    assert [(e.kind, e.message) for e in log.events] == [("warning", "WARNING: something odd")]


def test_sync_bn_info_line_is_not_a_warning(tmp_path):
    content = ("Converted model to use Synchronized BatchNorm. WARNING: You may have issues if using zero initialized "
               "BN layers (enabled by default for ResNets) while sync-bn enabled.\nWARNING: real warning\nWARNING: real warning\n")
    log = parse_console_log(write(tmp_path, content))
    assert log.info["sync_bn"] is True
    warnings = [e for e in log.events if e.kind == "warning"]
    assert len(warnings) == 1 and warnings[0].data["count"] == 2 and warnings[0].source.line == 2


def test_crash_and_oom(tmp_path):
    content = (LAYOUT_LINES["D"] + "\n"
               "Traceback (most recent call last):\n"
               '  File "train.py", line 1, in <module>\n'
               "    main()\n"
               "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
               "ERROR: No checkpoint found at 'x.pth.tar'\n")
    log = parse_console_log(write(tmp_path, content))
    kinds = [(e.kind, e.source.line, e.epoch) for e in log.events]
    assert ("crash", 5, 0) in kinds and ("oom", 5, 0) in kinds and ("crash", 6, 0) in kinds


def test_epoch_counter_going_back_starts_a_segment(tmp_path):
    lines = [LAYOUT_LINES["D"].replace("Train: 0 [   0/", f"Train: {epoch} [   0/") for epoch in (0, 1, 2, 1, 2)]
    log = parse_console_log(write(tmp_path, "\n".join(lines) + "\n"))
    assert log.steps["segment"].tolist() == [0, 0, 0, 1, 1]
    resume = [e for e in log.events if e.kind == "resume"]
    assert len(resume) == 1 and resume[0].source.line == 4 and resume[0].epoch == 1


def test_skipped_eval_and_cut_validation_block(tmp_path):
    content = (LAYOUT_LINES["D"] + "\nSkipping eval and checkpointing \n"
               + LAYOUT_LINES["D"].replace("Train: 0", "Train: 1") + "\n"
               "Test: [   0/30]  Time: 3.856 (0.732)  Loss:   6.615 ( 6.691)  Acc@1:   0.000 (  0.076)  Acc@5:   1.176 (  3.287)\n"
               + LAYOUT_LINES["D"].replace("Train: 0", "Train: 2") + "\n")
    log = parse_console_log(write(tmp_path, content))
    assert [(e.kind, e.epoch) for e in log.events] == [("skipped_eval", 0)]
    assert log.evals[["epoch", "eval_top1"]].values.tolist() == [[1, 0.076]]
    assert any("cut" in issue.message and issue.source.line == 4 for issue in log.issues)


def test_sniff(tmp_path):
    for path in FIXTURE_LOGS[:3]:
        assert sniff_console_log(path.read_bytes()[:65536]) == "timm console log"
    assert sniff_console_log((RUNS / "v1_healthy" / "summary.csv").read_bytes()) is None
    assert sniff_console_log((RUNS / "v1_healthy" / "args.yaml").read_bytes()) is None
    assert sniff_console_log(os.urandom(4096)) is None
    assert sniff_console_log(b"") is None


# -- bad input --------------------------------------------------------------------------------

def test_empty_file(tmp_path):
    log = parse_console_log(write(tmp_path, b""))
    assert len(log.steps) == len(log.evals) == 0 and log.layout is None and log.n_lines == 0
    assert [issue.message for issue in log.issues] == ["empty file"]


def test_missing_file_is_an_ingest_error(tmp_path):
    with pytest.raises(IngestError, match="cannot read"):
        parse_console_log(tmp_path / "nope.log")


@pytest.mark.parametrize("content", [os.urandom(20_000), b"\x00" * 5000 + b"Train: 0 [", bytes(range(256)) * 40],
                         ids=["random", "nul", "all-bytes"])
def test_binary_content_is_an_ingest_error_with_offset(tmp_path, content):
    with pytest.raises(IngestError, match=r"binary data at byte \d+") as error:
        parse_console_log(write(tmp_path, content, "junk.log"))
    assert error.value.source.path.endswith("junk.log") and error.value.source.offset is not None


def test_invalid_utf8_mid_file_is_reported_once(tmp_path):
    lines = (RUNS / "v1_healthy" / "train.log").read_bytes().splitlines(keepends=True)
    train = [i for i, line in enumerate(lines) if line.startswith(b"Train:")]
    other = [i for i, line in enumerate(lines) if line.startswith(b"Current")]
    lines[train[5]] = lines[train[5]].rstrip(b"\n") + b" \xff\xfe\n"   # still a Train line
    lines[other[3]] = b"\xc3\x28 broken\n"
    log = parse_console_log(write(tmp_path, b"".join(lines)))
    utf8 = [issue for issue in log.issues if "UTF-8" in issue.message]
    assert len(utf8) == 1 and utf8[0].source.line == train[5] + 1
    assert len(log.steps) == len(parse_console_log(RUNS / "v1_healthy" / "train.log").steps)


def test_cut_last_line_is_an_issue_and_earlier_rows_stay(tmp_path):
    text = (RUNS / "v1_healthy" / "train.log").read_text()
    cut = text[:text.index("Train: 3 [  20/31")] + "Train: 3 [  20/31 ( 68%)]  Loss: 3.72 (4."
    log = parse_console_log(write(tmp_path, cut))
    number = cut.count("\n") + 1
    assert any(issue.source.line == number and "cut off" in issue.message for issue in log.issues)
    assert [e.kind for e in log.events if e.source.line == number] == ["truncated"]
    complete = [line for line in cut.splitlines()[:-1] if line.startswith("Train:")]
    assert log.steps["src_line"].max() < number and len(log.steps) == len(complete)


def test_huge_single_line_is_skipped_quickly(tmp_path):
    line = "Train: 0 [" + "9" * (20 << 20)
    content = LAYOUT_LINES["D"] + "\n" + line + "\n" + LAYOUT_LINES["D"] + "\n" + "x" * 100_000 + "\n" + LAYOUT_LINES["D"]
    log = console_log.parse_console_log(write(tmp_path, content), chunk_size=1 << 20)
    assert log.steps["src_line"].tolist() == [1, 3, 5]
    assert [(issue.source.line, "longer than" in issue.message) for issue in log.issues] == [(2, True), (4, True)]
    assert log.n_lines == 5


def test_nul_tail_after_good_lines(tmp_path):
    good = (RUNS / "v1_healthy" / "train.log").read_bytes()
    log = parse_console_log(write(tmp_path, good + b"\x00" * 200_000))
    assert len(log.steps) == good.count(b"\nTrain:") + good.startswith(b"Train:")
    assert any("NUL" in i.message or "longer than" in i.message for i in log.issues)


def test_utf16_log(tmp_path):
    text = (RUNS / "v1_healthy" / "train.log").read_text()
    log = parse_console_log(write(tmp_path, "\ufeff".encode("utf-16-le") + text.encode("utf-16-le")))
    assert frames_equal(log, parse_console_log(RUNS / "v1_healthy" / "train.log"))


# -- property-based: nothing but IngestError, and both paths agree --------------------------

SEED_LOG = (RUNS / "v06_ema_lag" / "train.log").read_bytes()


def parse_bytes(tmp_path: Path, content: bytes, **options) -> ConsoleLog | None:
    path = tmp_path / "mutated.log"
    path.write_bytes(content)
    try:
        return console_log.parse_console_log(path, **options)
    except IngestError as error:
        assert "internal parser error" not in error.message
        return None


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=4096))
def test_random_bytes_only_ingest_error(tmp_path, content):
    parse_bytes(tmp_path, content)


@st.composite
def mutated_logs(draw) -> bytes:
    lines = SEED_LOG.splitlines(keepends=True)
    for _ in range(draw(st.integers(0, 4))):        # duplicate lines (a restart, a double print)
        at = draw(st.integers(0, len(lines) - 1))
        lines.insert(at, lines[draw(st.integers(0, len(lines) - 1))])
    content = bytearray(b"".join(lines))
    for _ in range(draw(st.integers(0, 12))):       # byte flips
        at = draw(st.integers(0, len(content) - 1))
        content[at] = draw(st.integers(0, 255))
    return bytes(content[:draw(st.integers(1, len(content)))])   # truncation


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutated_logs())
def test_mutated_real_log_only_ingest_error_and_paths_agree(tmp_path, content):
    fast = parse_bytes(tmp_path, content)
    slow = parse_bytes(tmp_path, content, fast=False)
    assert (fast is None) == (slow is None)
    if fast is not None:
        assert frames_equal(fast, slow)
        assert len(fast.steps) <= SEED_LOG.count(b"Train:") + 4


# -- the bulk (template) path against the reference per-line parser, on real logs of every timm version --

SHARED_RUNS = REPO.parent / "shared" / "timm-runs"
EVERY_REAL_LOG = sorted(SHARED_RUNS.glob("*/train.log")) + FIXTURE_LOGS


def same_parse(a: ConsoleLog, b: ConsoleLog) -> bool:
    """Everything a parse gives: rows, messages, events, issues, layout and version."""
    return (frames_equal(a, b) and dict(a.info) == dict(b.info) and dict(a.info_refs) == dict(b.info_refs)
            and a.lr_calc == b.lr_calc and a.events == b.events and a.issues == b.issues
            and (a.layout, a.timm_version, a.n_lines, a.throughput_bug) == (b.layout, b.timm_version, b.n_lines, b.throughput_bug))


@pytest.mark.parametrize("path", EVERY_REAL_LOG, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_fast_path_and_reference_parser_agree_on_real_logs(path):
    fast = parse_console_log(path, "train.log")
    assert len(fast.steps) == sum("Train:" in line for line in path.read_text(errors="replace").splitlines())
    assert same_parse(fast, parse_console_log(path, "train.log", fast=False))
    assert same_parse(fast, parse_console_log(path, "train.log", chunk_size=4096))


def test_shared_runs_cover_every_timm_era():
    """The agreement test above sees the old (A/B), 0.9 (C) and 1.0 (D) Train layouts."""
    layouts = {parse_console_log(path).layout for path in EVERY_REAL_LOG}
    assert {"B", "C", "D"} <= layouts or not SHARED_RUNS.exists()


def test_bad_line_mid_file_through_the_fast_path(tmp_path):
    """A garbled Train line amid thousands of lines of one shape (read in bulk): the lines around it
    are kept, it is reported with file and line, and the reference parser says the same."""
    real = (SHARED_RUNS / "v1_healthy" / "train.log") if SHARED_RUNS.exists() else (RUNS / "v1_healthy" / "train.log")
    lines = real.read_text().splitlines()
    header = [line for line in lines if not line.startswith(("Train:", "Test"))][:12]
    train = next(line for line in lines if line.startswith("Train: 0 [  10/31"))
    body = [train.replace("Train: 0 [  10/31", f"Train: {k // 31} [{k % 31:>4d}/31") for k in range(3000)]
    bad_at = 1500
    body[bad_at] = body[bad_at].replace("[  12/31", "[  1\x7f/31")  # the step counter unreadable
    path = write(tmp_path, "\n".join(header + body) + "\n")
    fast = parse_console_log(path, "train.log")
    bad_line = len(header) + bad_at + 1
    assert len(fast.steps) == 2999
    assert bad_line not in set(fast.steps["src_line"]) and {bad_line - 1, bad_line + 1} <= set(fast.steps["src_line"])
    problem = [issue for issue in fast.issues if issue.source.line == bad_line]
    assert problem and problem[0].source.path == "train.log" and "Train: line" in problem[0].message
    assert same_parse(fast, parse_console_log(path, "train.log", fast=False))


def test_no_module_imports_another_modules_private_names():
    """console_log's modules and the watcher use each other's public names only (issue 16)."""
    import ast

    files = sorted((REPO / "analyzer" / "ingest" / "console_log").glob("*.py")) + [REPO / "analyzer" / "watch" / "sources.py"]
    private = []
    for file in files:
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mnv4_postmortem"):
                private += [f"{file.name}: {node.module}.{alias.name}" for alias in node.names
                            if alias.name.startswith("_")]
    assert not private, private
