"""The ablation ladder: which components, in which order, and the rung that brings the stall back.

Planning is torch-free; one end-to-end test trains a tiny ladder with the runner's trainer.
"""

from __future__ import annotations

import json

import pytest

from conftest import REPO
from mnv4_postmortem.runner import ablation


def _plan(run: str, **kwargs):
    from mnv4_postmortem.analyzer.ingest import load_run
    from mnv4_postmortem.runner.ablation_run import ladder_for
    from mnv4_postmortem.runner.spec import build_spec

    loaded = load_run(REPO / "fixtures" / "runs" / run)
    return ladder_for(loaded, build_spec(loaded), **kwargs)


def test_seed_ladder_switches_everything_off_then_adds_the_top_finding_last():
    plan = _plan("seed_mnv4")
    base = plan.rungs[0].patch
    assert base["model_ema"] is False
    assert base["drop"] == base["drop_path"] == base["smoothing"] == base["mixup"] == base["cutmix"] == base["reprob"] == 0
    # lr 1e-3 for adamw at global batch 32 is above the typical sqrt-scaled 1e-3 * sqrt(32/256)
    assert base["lr"] == pytest.approx(1e-3 * (32 / 256) ** 0.5)
    # findings: ema-lag (top), input-size-mismatch; differential: over-regularization (outweighed by the EMA lag
    # the log shows, issue 13), no-learning, lr-too-high. Least suspicious first: regularization and lr (both in
    # the differential only, in catalog order), EMA (the top finding) last.
    assert [c.key for c in plan.components] == ["regularization", "lr", "ema"]
    assert plan.rungs[-1].added == "+ EMA (decay 0.9998, without warmup)"
    last = plan.rungs[-1].patch
    assert last["model_ema"] is True and last["model_ema_warmup"] is False and last["lr"] == pytest.approx(1e-3)
    assert last["drop"] == 0.2 and last["drop_path"] == 0.2 and last["smoothing"] == 0.1
    ema = plan.components[-1]
    assert ema.why[0] == "finding ema-lag"


def test_order_follows_the_analyzers_ranking_not_a_fixed_list():
    args = {"model_ema": True, "model_ema_decay": 0.999, "lr": 1.0, "drop": 0.3}
    top_lr = ablation.components_of(args, 0.1, ["lr-too-high", "ema-lag"], [])
    assert [c.key for c in ablation.plan_ladder(top_lr).components] == ["regularization", "ema", "lr"]
    top_ema = ablation.components_of(args, 0.1, ["ema-lag"], ["over-regularization"])
    assert [c.key for c in ablation.plan_ladder(top_ema).components] == ["lr", "regularization", "ema"]


def test_one_at_a_time_and_max_rungs():
    alone = _plan("seed_mnv4", one_at_a_time=True)
    assert [r.components for r in alone.rungs] == [(), ("regularization",), ("lr",), ("ema",)]
    assert alone.rungs[3].patch["drop"] == 0 and alone.rungs[3].patch["model_ema"] is True
    short = _plan("seed_mnv4", max_rungs=2)
    assert [r.components for r in short.rungs] == [(), ("ema",)]  # the most suspicious kept
    assert len(short.dropped) == 2 and "regularization" in short.dropped[0] and "lr" in short.dropped[1]


def test_a_recipe_at_a_typical_lr_without_ema_has_only_its_regularization_to_add():
    plan = _plan("v1_healthy")  # adamw 1e-3 at batch 32, smoothing 0.1 (timm's default), no EMA
    keys = [c.key for c in plan.components]
    assert "ema" not in keys
    assert "regularization" in keys


def test_first_stall_rung_needs_a_baseline_that_learns():
    assert ablation.first_stall_rung([False, False, True, True]) == 2
    assert ablation.first_stall_rung([True, True]) is None      # the baseline itself is flat
    assert ablation.first_stall_rung([False, False]) is None
    assert ablation.is_flat([0.4, 1.0]) is True and ablation.is_flat([12.0, 3.0]) is False
    assert ablation.eval_gain([10.0, 9.0, 30.0]) == 20.0


def test_tiny_ladder_trains_every_rung_and_reads_each_back(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("timm")
    from dataclasses import replace

    from rich.console import Console

    from _runner_helpers import tiny_spec
    from mnv4_postmortem.runner import ablation_run
    from mnv4_postmortem.runner.reproduce import Options

    spec = tiny_spec("seed_mnv4", epochs=2, max_samples=16, val_samples=8)
    opts = Options(proxy=True, seeds=1, out=tmp_path, device="cpu")
    console = Console(file=open(tmp_path / "log.txt", "w"), width=200)
    code = ablation_run.run_ablation(REPO / "fixtures" / "runs" / "seed_mnv4", opts, console, spec=spec)
    assert code == 0
    doc = json.loads((tmp_path / "ablation" / "ablation.json").read_text())
    assert [r["rung"] for r in doc["rungs"]] == [0, 1, 2, 3]
    assert doc["rungs"][-1]["added"].startswith("+ EMA")
    for rung in doc["rungs"]:
        assert rung["final_top1"] is not None and rung["train_loss"] is not None
        assert len(rung["seeds"][0]["curve"]["eval_top1"]) == 2
    # rungs 2 and 3 differ only in EMA: one trajectory, the same raw model
    assert doc["rungs"][2]["final_top1_model"] == doc["rungs"][3]["final_top1_model"]
    assert (tmp_path / "ablation" / "ablation_top1.png").stat().st_size > 1000
    log = (tmp_path / "log.txt").read_text()
    assert "Cost" in log and "Ablation ladder" in log
