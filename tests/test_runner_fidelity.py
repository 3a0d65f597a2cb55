"""Fidelity: the built-in trainer and --train-script (a small script making the same timm calls as
train.py, tests/data/tiny_train.py) train the same arm to the same per-epoch loss."""

from __future__ import annotations

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from _runner_helpers import summary_rows, tiny_spec  # noqa: E402
from conftest import REPO  # noqa: E402

SCRIPT = REPO / "tests" / "data" / "tiny_train.py"


def test_builtin_trainer_and_train_script_give_the_same_epoch_losses(tmp_path):
    from mnv4_postmortem.analyzer.ingest import load_run
    from mnv4_postmortem.runner.script import materialize_proxy, run_train_script
    from mnv4_postmortem.runner.trainer import train_arm

    # seed_mnv4's recipe (adamw, cosine, warmup, smoothing 0.1, EMA) on a tiny model; no dropout and no
    # augmentation so both sides consume the random generator identically
    spec = tiny_spec(epochs=2, max_samples=32, val_samples=16, drop=0.0, drop_path=None, no_aug=True,
                     pretrained=False, pretrained_path=None)
    spec = replace(spec, data=str(materialize_proxy(spec, tmp_path)))
    arm = spec.arm("control", "control")
    builtin = train_arm(spec, arm, 3, tmp_path / "arms" / "builtin" / "seed3", tensorboard=False)
    scripted = run_train_script(SCRIPT, spec, arm, 3, tmp_path / "arms" / "script" / "seed3")

    ours = summary_rows(builtin.out_dir)
    theirs = summary_rows(scripted.out_dir)
    assert len(ours) == len(theirs) == 2
    for a, b in zip(ours, theirs):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["lr"] == pytest.approx(b["lr"], rel=1e-9)
    # and the analyzer reads the script's folder with its ordinary parsers
    run = load_run(scripted.out_dir)
    assert run.n_epochs == 2 and run.series("eval_top1_ema").notna().all()
