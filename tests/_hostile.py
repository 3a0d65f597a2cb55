"""Runs whose names, tags, settings and log lines are hostile markup, for the HTML and Markdown tests.

Built from the bundled seed run (real timm 1.0.28 output) in a temp folder; only the hostile strings are
hand-written. A folder name cannot hold "/", so ``<script>...</script>`` goes into tags, settings and
log lines, and the folder names carry the other two payloads.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from conftest import FIXTURE_RUNS

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
JS_URL = "javascript:alert(1)"
PAYLOADS = (SCRIPT, IMG, JS_URL)
SEED = FIXTURE_RUNS / "seed_mnv4"
LOG_LINE = f"WARNING: {SCRIPT} {IMG} {JS_URL}"


def hostile_log_run(root: Path) -> Path:
    """The seed run in a folder named with the <img> payload; its log has a hostile line inside the range
    the ema-lag evidence cites (train.log:22-...), and its experiment name is hostile."""
    run = root / IMG
    shutil.copytree(SEED, run)
    lines = (SEED / "train.log").read_text().splitlines(keepends=True)
    lines.insert(23, LOG_LINE + "\n")
    (run / "train.log").write_text("".join(lines))
    _set_args(run, experiment=SCRIPT)
    return run


def hostile_args_run(root: Path) -> Path:
    """args.yaml + summary.csv of the seed (no log, so args.yaml's model is the model shown), in a folder
    named with the javascript: payload; model and experiment are hostile."""
    run = root / JS_URL
    run.mkdir()
    shutil.copy(SEED / "summary.csv", run / "summary.csv")
    shutil.copy(SEED / "args.yaml", run / "args.yaml")
    _set_args(run, model=SCRIPT, experiment=IMG)
    return run


def hostile_tb_run(root: Path) -> Path:
    """A TensorBoard-only run whose scalar tags are the payloads (unknown tags keep their own names)."""
    run = root / "tb run" / "Mar31_16-30-58_host"
    run.mkdir(parents=True)
    writer = EventFileWriter(str(run))
    for epoch in range(12):
        values = [
            summary_pb2.Summary.Value(tag="train/loss", simple_value=2.3 * 0.9 ** epoch),
            summary_pb2.Summary.Value(tag="val/acc1", simple_value=10 + 5 * epoch),
            summary_pb2.Summary.Value(tag=SCRIPT, simple_value=float(epoch)),
            summary_pb2.Summary.Value(tag=JS_URL, simple_value=float(-epoch)),
        ]
        writer.add_event(event_pb2.Event(step=epoch, wall_time=1000.0 + epoch, summary=summary_pb2.Summary(value=values)))
    writer.close()
    return run


def _set_args(run: Path, **values: str) -> None:
    import yaml

    path = run / "args.yaml"
    args = yaml.safe_load(path.read_text())
    args.update(values)
    path.write_text(yaml.safe_dump(args))
