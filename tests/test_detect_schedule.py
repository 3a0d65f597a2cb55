"""LR schedule reconstruction: warm-up, peak, decay shape, and the comparison with the config."""

from __future__ import annotations

import math

import numpy as np
import pytest

from _detect_synth import fixture_run, make_run, make_steps, timm_cosine
from mnv4_postmortem.analyzer.detect import detect

COSINE_CONFIG = {"sched": "cosine", "epochs": 100, "warmup_epochs": 5, "lr": 0.1, "warmup_lr": 1e-5,
                 "min_lr": 0.0}


def schedule_of(lr, config=None, **run_kwargs):
    return detect(make_run({"lr": list(lr)}, config, **run_kwargs)).schedule


def test_cosine_with_five_warmup_epochs_matches_its_config():
    schedule = schedule_of(timm_cosine(100, lr=0.1, warmup=5), COSINE_CONFIG)
    assert schedule.source == "epoch"
    assert schedule.warmup_epochs == 5 and schedule.peak_epoch == 5
    assert schedule.peak_lr == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 5 / 100)))
    assert schedule.shape == "cosine" and schedule.shape_error < 0.01
    assert schedule.initial_lr == pytest.approx(1e-5)
    assert schedule.mismatches == ()


def test_warmup_missing_from_the_log_is_a_mismatch():
    schedule = schedule_of(timm_cosine(100, lr=0.1, warmup=0), COSINE_CONFIG)
    assert schedule.warmup_epochs == 0
    assert any("warmup_epochs is 5" in m for m in schedule.mismatches)


def test_peak_ten_times_the_configured_lr_is_a_mismatch():
    schedule = schedule_of(timm_cosine(100, lr=1.0, warmup=5), COSINE_CONFIG)
    (peak,) = [m for m in schedule.mismatches if m.startswith("peak LR")]
    assert "10x" in peak


def test_step_schedule_against_cosine_config():
    lr = [0.1] * 30 + [0.01] * 30 + [0.001] * 40
    schedule = schedule_of(lr, {**COSINE_CONFIG, "warmup_epochs": 0})
    assert schedule.shape == "step"
    assert schedule.mismatches == ("LR decays like 'step', but sched is 'cosine'",)
    assert schedule_of(lr, {"sched": "step", "lr": 0.1, "warmup_epochs": 0}).mismatches == ()


@pytest.mark.parametrize("lr,shape", [
    (np.full(40, 0.05), "constant"),
    (np.linspace(0.1, 0.001, 40), "linear"),
    (0.1 * 0.9 ** np.arange(40), "exponential"),
    (np.r_[timm_cosine(30, lr=0.1, total=30), np.zeros(10)], "cosine"),  # with a cool-down at min_lr
])
def test_decay_shapes(lr, shape):
    assert schedule_of(lr).shape == shape


def test_short_run_still_warming_up_is_not_a_warmup_mismatch():
    schedule = schedule_of(timm_cosine(3, lr=0.1, warmup=5, total=100), COSINE_CONFIG)
    assert schedule.peak_epoch == 2
    assert schedule.mismatches == ()


def test_run_logged_from_mid_schedule_has_no_peak_or_warmup_mismatch():
    lr = timm_cosine(100, lr=0.1, warmup=5)[41:]
    schedule = schedule_of(lr, COSINE_CONFIG, first_epoch=41)
    assert schedule.peak_epoch == 41 and schedule.shape == "cosine"
    assert schedule.mismatches == ()


def test_schedule_from_step_lrs_when_the_epoch_column_is_missing():
    per_epoch, epochs = 20, 30
    updates = np.arange(per_epoch * epochs)
    warm = 5 * per_epoch  # --sched-on-updates: warm-up over updates
    lr = np.where(updates < warm, 1e-5 + updates * (0.1 - 1e-5) / warm,
                  0.05 * (1 + np.cos(np.pi * updates / (per_epoch * epochs))))
    steps = make_steps(epochs, per_epoch, np.linspace(6.9, 2.0, per_epoch * epochs), lr)
    run = make_run({"train_loss": np.linspace(6.9, 2.0, epochs).tolist()},
                   {**COSINE_CONFIG, "epochs": epochs, "sched_on_updates": True}, steps=steps)
    schedule = detect(run).schedule
    assert schedule.source == "step"
    assert schedule.warmup_epochs == pytest.approx(5.0, abs=0.1)
    assert schedule.shape == "cosine"
    assert len(schedule.epochs) == epochs


def test_no_lr_anywhere_gives_no_schedule():
    assert detect(make_run({"train_loss": [2.0, 1.9, 1.8]})).schedule is None


def test_layer_decay_skips_the_peak_comparison():
    schedule = schedule_of(timm_cosine(100, lr=0.05, warmup=5), {**COSINE_CONFIG, "layer_decay": 0.75})
    assert schedule.expected_peak_lr is None
    assert not any(m.startswith("peak LR") for m in schedule.mismatches)


def test_fixture_cosine_runs_with_one_warmup_epoch():
    for name in ("v1_healthy", "v09_ema_lag", "v1_nan"):
        schedule = detect(fixture_run(name)).schedule
        assert schedule.shape == "cosine", name
        assert schedule.mismatches == (), (name, schedule.mismatches)
    assert detect(fixture_run("v1_healthy")).schedule.warmup_epochs == 1
    assert detect(fixture_run("v1_nan")).schedule.warmup_epochs == 0


def test_zero_lr_throughout_is_constant():
    schedule = schedule_of([0.0] * 10)
    assert (schedule.shape, schedule.peak_lr, schedule.warmup_epochs) == ("constant", 0.0, 0.0)


def test_vectorised_cosine_fits_equal_one_lstsq_per_candidate():
    """_fit_cosine scores all candidate cosines in one closed-form pass; it must equal lstsq per candidate."""
    from mnv4_postmortem.analyzer.detect import schedule as schedule_mod

    rng = np.random.default_rng(3)
    for _ in range(40):
        n = int(rng.integers(3, 200))
        t = np.sort(rng.uniform(0, 100, n))
        v = 0.5 * (1 + np.cos(math.pi * np.clip(t / rng.uniform(20, 200), 0, 1))) + rng.normal(0, 0.02, n)
        bases = np.vstack([np.ones(n), t, 0.5 * (1 + np.cos(math.pi * np.clip(t / 50.0, 0, 1)))])
        one_by_one = [schedule_mod._rms_of_linear_fit(b, v) for b in bases]
        assert schedule_mod._rms_of_linear_fits(bases, v) == pytest.approx(one_by_one, rel=1e-9, abs=1e-12)
