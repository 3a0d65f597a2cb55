"""Issue 13's reproductions, each on the repo's or ../shared's real runs (made into what a user has: a folder
without its console log, summary.csv alone, accuracies as fractions, a pasted excerpt). Each failed before the
symptoms-first redesign and passes after it; the inline-series reproductions (a stuck model at a few times
chance on 100 classes, adamw at hundreds of times a typical LR) are rule tests beside their rules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mnv4_postmortem.analyzer.engine import load_pack
from mnv4_postmortem.analyzer.findings import Severity
from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.ingest.excerpt import load_excerpt
from mnv4_postmortem.analyzer.pipeline import diagnose

from conftest import FIXTURE_RUNS, REAL_RUNS, TIMM_RUNS


@pytest.fixture(scope="module")
def pack():
    return load_pack()


def _copy(run: Path, dest: Path, names: tuple[str, ...]) -> Path:
    if not run.is_dir():
        pytest.skip(f"{run} is not available")
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(run / name, dest / name)
    return dest


def _top(report) -> str:
    serious = [f for f in report.findings if f.severity >= Severity.WARNING]
    return serious[0].cause if serious else ("unexplained" if report.unexplained else "healthy")


@pytest.mark.parametrize("run", [TIMM_RUNS / "v1_ema_lag", FIXTURE_RUNS / "r18_grat_ema_v09",
                                 FIXTURE_RUNS / "r18_grat_ema99_catchup_v1", FIXTURE_RUNS / "seed_mnv4"],
                         ids=lambda p: p.name)
def test_console_log_dropped_ema_lag_still_found(run, tmp_path, pack):
    """args.yaml says model_ema without warmup and summary.csv shows the EMA eval flat: ema-lag, not "No problem
    found" (and for the seed, not input-size-mismatch first)."""
    report = diagnose(load_run(_copy(run, tmp_path / run.name, ("summary.csv", "args.yaml"))), pack)
    assert _top(report) == "ema-lag", [(f.cause, f.confidence) for f in report.findings]


@pytest.mark.parametrize("name", ["r18_grat_randlabels_v1", "r18_grat_valshift_v1", "r18_grat10_noaug_v1",
                                  "effb0_shapes_adamw_step_v09"])
def test_summary_csv_alone_is_never_no_problem_found_when_a_symptom_fires(name, tmp_path, pack):
    report = diagnose(load_run(_copy(FIXTURE_RUNS / name, tmp_path / name, ("summary.csv",))), pack)
    strong = [s for s in report.symptoms if s.severity >= Severity.WARNING]
    if strong:
        assert report.problem_found and _top(report) != "healthy"
    explained = {s for f in report.findings for s in f.symptoms}
    assert all(s.id in explained or s.id in {u.symptom.id for u in report.unexplained} for s in strong)


def _as_fractions(run: Path, dest: Path) -> Path:
    if not run.is_dir():
        pytest.skip(f"{run} is not available")
    table = pd.read_csv(run / "summary.csv")
    for column in table.columns:
        if "top1" in column or "top5" in column:
            table[column] = table[column] / 100.0
    dest.mkdir(parents=True)
    table.to_csv(dest / "summary.csv", index=False)
    if (run / "args.yaml").is_file():
        shutil.copy2(run / "args.yaml", dest / "args.yaml")
    return dest


@pytest.mark.parametrize("run", [REAL_RUNS / "neudeep-resnet50-in1k-360ep", FIXTURE_RUNS / "r18_grat_sgd_cos_v1",
                                 FIXTURE_RUNS / "r18_grat_randlabels_v1", REAL_RUNS / "vuthehuy-convnext-noshortcut-cifar100-stuck"],
                         ids=lambda p: p.name)
def test_accuracy_as_fractions_gets_the_same_diagnosis(run, tmp_path, pack):
    """Healthy runs in fractions are not "eval broken"; no-learning runs in fractions are not healthy."""
    if not run.is_dir():
        pytest.skip(f"{run} is not available")
    percent = diagnose(load_run(run), pack)
    fraction = diagnose(load_run(_as_fractions(run, tmp_path / run.name)), pack)
    assert _top(fraction) == _top(percent)
    units = fraction.run.config.effective.get("accuracy_units") or {}
    assert units.get("eval_top1") == "fraction"
    assert "fraction of 1" in fraction.run.config.effective_sources["accuracy_units"]


def test_short_log_excerpt_test_learns_while_test_ema_sits_at_chance(pack):
    """The last epoch's `Test:` and `Test (EMA):` lines of a real EMA-lag run, pasted: ema-lag, not healthy."""
    log = TIMM_RUNS / "v1_ema_lag" / "train.log"
    if not log.is_file():
        pytest.skip(f"{log} is not available")
    lines = log.read_text(encoding="utf-8").splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("Test: [   0/"))
    excerpt = "\n".join(lines[start - 12: start + 12]).encode()
    report = diagnose(load_excerpt(excerpt), pack)
    assert _top(report) == "ema-lag", [(f.cause, f.confidence) for f in report.findings] + [s.id for s in report.symptoms]


def test_over_regularization_never_fires_with_every_knob_it_turns_at_zero(tmp_path, pack):
    """A run whose drop, drop-path, mixup, cutmix and smoothing are all 0 (regularization only from random
    erasing and weight decay) gets no over-regularization: its fix would change nothing."""
    run = FIXTURE_RUNS / "r18_grat_randlabels_v1"
    dest = _copy(run, tmp_path / "zero", ("summary.csv", "args.yaml"))
    args = yaml.safe_load((dest / "args.yaml").read_text())
    args.update(drop=0.0, drop_path=0.0, mixup=0.0, cutmix=0.0, smoothing=0.0, reprob=1.0)
    (dest / "args.yaml").write_text(yaml.safe_dump(args))
    report = diagnose(load_run(dest), pack)
    assert "over-regularization" not in {f.cause for f in report.findings}


def test_a_cause_with_no_symptom_of_its_own_never_outranks_a_strong_symptom(pack):
    """A model at chance for its whole (stopped) run with mixup and smoothing on: no-learning first, not the
    config suspicion."""
    for name in ("mnv3_grat_randlabels_killed_v09", "vit_shapes_randlabels_mix_v09"):
        report = diagnose(load_run(FIXTURE_RUNS / name), pack)
        assert report.findings[0].cause == "no-learning", [(f.cause, f.confidence) for f in report.findings]
        others = [f for f in report.findings[1:] if f.cause == "over-regularization"]
        assert all(report.findings.index(f) > 0 for f in others)
