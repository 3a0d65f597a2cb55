"""Issue 17 item 1: the epochs of TensorBoard global steps, for every layout a plain training loop writes.

Each case is written by torch's real ``SummaryWriter`` from one loop (:func:`write_loop`): 12 epochs of 25
optimizer steps logging ``train/loss`` and ``train/lr`` per step, and once an epoch ``val/loss`` and
``val/acc`` (a fraction) at one of these steps:

- ``last``: the epoch's last train step (Lightning's convention);
- ``next``: one step later, the first step of the next epoch (a loop that validates after ``step += 1``;
  the layout of the issue, which made "train loss is nan from epoch 11" out of a healthy run);
- ``end1``: the loop counts steps from 1, and validates at the step count at the epoch's end;
- ``index``: the epoch index itself (the PyTorch tutorials).

and an ``epoch`` counter logged with each validation, at each epoch's start, at every step, or not at all;
plus a run restarted from an epoch-4 checkpoint into a second event file. Expected values are computed here
from the loop's own formulas, never read back from the tool.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.cli import cli

SummaryWriter = pytest.importorskip("torch.utils.tensorboard").SummaryWriter

EPOCHS, PER_EPOCH = 12, 25


def train_loss(step: int, restarted: bool = False) -> float:
    return 2.0 * math.exp(-step / 150) + 0.3 + 0.002 * (step % 7) + (0.01 if restarted else 0.0)


def val_acc(epoch: int) -> float:
    return 0.4 + 0.03 * epoch


def write_loop(folder: Path, val_at: str, epoch_tag: str, *, restart: bool = False, nan_from: int | None = None) -> Path:
    """One training loop's event file(s); ``restart``: dies in epoch 7 and resumes from epoch 4 in a new file."""
    clock = [1.7e9]

    def add(writer, tag, value, step):
        clock[0] += 0.01
        writer.add_scalar(tag, value, step, walltime=clock[0])

    def run(writer, first_epoch: int, last_epoch: int, restarted: bool, stop_step: int | None = None) -> None:
        base = 1 if val_at == "end1" else 0
        for epoch in range(first_epoch, last_epoch):
            if epoch_tag == "start":
                add(writer, "epoch", epoch, base + epoch * PER_EPOCH)
            for i in range(PER_EPOCH):
                n = epoch * PER_EPOCH + i          # 0-based count of the optimizer step
                step = n + base
                if stop_step is not None and n >= stop_step:
                    return
                loss = float("nan") if nan_from is not None and n >= nan_from else train_loss(n, restarted)
                add(writer, "train/loss", loss, step)
                add(writer, "train/lr", 0.01 * (1 + math.cos(math.pi * n / (EPOCHS * PER_EPOCH))) / 2, step)
                if epoch_tag == "every":
                    add(writer, "epoch", epoch, step)
            val_step = {"last": (epoch + 1) * PER_EPOCH - 1, "next": (epoch + 1) * PER_EPOCH,
                        "end1": (epoch + 1) * PER_EPOCH, "index": epoch}[val_at]
            add(writer, "val/loss", 1.5 - 0.05 * epoch, val_step)
            add(writer, "val/acc", val_acc(epoch), val_step)
            if epoch_tag == "with_eval":
                add(writer, "epoch", epoch, val_step)

    if restart:
        first = SummaryWriter(log_dir=str(folder), filename_suffix=".a")
        run(first, 0, EPOCHS, False, stop_step=7 * PER_EPOCH + 10)
        first.close()
        clock[0] += 600
        second = SummaryWriter(log_dir=str(folder), filename_suffix=".b")
        run(second, 4, EPOCHS, True)
        second.close()
    else:
        writer = SummaryWriter(log_dir=str(folder))
        run(writer, 0, EPOCHS, False)
        writer.close()
    return folder


LAYOUTS = [
    (val_at, tag)
    for val_at in ("last", "next", "end1")
    for tag in ("none", "with_eval", "start", "every")
] + [("index", "none"), ("index", "with_eval")]


def expected_train_loss(epoch: int, restart: bool) -> float:
    restarted = restart and epoch >= 4
    return float(np.mean([np.float32(train_loss(epoch * PER_EPOCH + i, restarted)) for i in range(PER_EPOCH)]))


@pytest.mark.parametrize("restart", [False, True], ids=["one-file", "restart"])
@pytest.mark.parametrize(("val_at", "epoch_tag"), LAYOUTS, ids=[f"val-{v}-epoch-{t}" for v, t in LAYOUTS])
def test_every_layout_maps_each_train_step_to_its_epoch(tmp_path, val_at, epoch_tag, restart):
    run = load_run(write_loop(tmp_path, val_at, epoch_tag, restart=restart))
    assert list(run.epochs.index) == list(range(EPOCHS))
    assert run.epochs["eval_top1"].to_numpy() == pytest.approx([100 * val_acc(e) for e in range(EPOCHS)], rel=1e-5)
    # every logged step has an epoch, and each epoch has its 25 steps
    assert len(run.steps) == EPOCHS * PER_EPOCH
    assert np.isfinite(run.steps["epoch"].to_numpy(dtype=float)).all()
    assert run.steps.groupby("epoch").size().tolist() == [PER_EPOCH] * EPOCHS
    # the epoch's train loss is the mean of exactly its own steps
    assert run.epochs["train_loss"].to_numpy() == pytest.approx(
        [expected_train_loss(e, restart) for e in range(EPOCHS)], rel=1e-6)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"}, catch_exceptions=False)


@pytest.mark.parametrize(("val_at", "epoch_tag"), [("next", "with_eval"), ("next", "none"), ("last", "every")])
def test_a_healthy_run_gets_no_divergence_and_no_n_a(tmp_path, val_at, epoch_tag):
    """The issue's run: 'critical divergence: train loss is nan from epoch 11' with no NaN in the file."""
    result = invoke("report", str(write_loop(tmp_path, val_at, epoch_tag)), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert not [f for f in report["findings"] if f["cause"] == "divergence"]
    texts = [e["text"] for f in report["findings"] for e in f["evidence"]]
    assert not [t for t in texts if "n/a" in t]
    text = invoke("report", str(tmp_path))
    assert "n/a" not in text.output and "rule error" not in text.output


def test_a_real_nan_is_still_a_divergence_from_its_epoch(tmp_path):
    result = invoke("report", str(write_loop(tmp_path, "next", "with_eval", nan_from=8 * PER_EPOCH + 3)),
                    "--format", "json")
    assert result.exit_code == 0, result.output
    (divergence,) = [f for f in json.loads(result.output)["findings"] if f["cause"] == "divergence"]
    assert "from epoch 8" in divergence["evidence"][0]["text"]
