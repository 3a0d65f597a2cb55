"""detect(run) and the pattern detectors: each fires on a series with known truth and stays silent on a clean one."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from _detect_synth import FIXTURE_RUNS, fixture_run, healthy_curves, make_run, make_steps
from mnv4_postmortem.analyzer.detect import Detection, detect
from mnv4_postmortem.analyzer.model import Event, SourceRef


@pytest.fixture(scope="module")
def healthy() -> Detection:
    return detect(make_run(healthy_curves(seed=0), {"num_classes": 100, "epochs": 100, "warmup_epochs": 5,
                                                    "lr": 1e-3, "warmup_lr": 1e-5, "sched": "cosine"}))


def test_healthy_run_is_quiet(healthy):
    assert healthy.stalls == ()
    assert healthy.explosions == ()
    assert healthy.nonfinite == ()
    assert healthy.spikes == ()
    assert healthy.gap is None
    assert healthy.incomplete is None
    assert healthy.ema_gap is None
    assert healthy.schedule is not None and healthy.schedule.mismatches == ()
    # only the first epochs can sit at chance; the run leaves it for good
    assert all(c.last_epoch < 5 for c in healthy.chance)
    assert healthy.segments["eval_top1"][0].label == "improving"
    assert healthy.segments["eval_loss"][-1].label in {"improving", "plateau"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_healthy_runs_stay_quiet_over_seeds(seed):
    found = detect(make_run(healthy_curves(seed=seed), {"num_classes": 100}))
    assert (found.stalls, found.explosions, found.spikes, found.gap) == ((), (), (), None)


# ---------------------------------------------------------------------------------------------------------
# exact stall


def test_seed_symptom_identical_accuracy_for_the_first_epochs_is_a_stall():
    top1 = [10.0] * 6 + [12.5, 16.0, 21.0, 25.5, 30.0, 33.0]
    found = detect(make_run({"eval_top1": top1, "train_loss": np.linspace(6.9, 3.0, 12).tolist()},
                            {"num_classes": 10}))
    (stall,) = found.stalls
    assert (stall.metric, stall.first_epoch, stall.last_epoch, stall.length, stall.value) == (
        "eval_top1", 0, 5, 6, 10.0)


def test_float32_rounding_of_the_same_count_is_still_identical():
    # real pair from fixtures/runs/v06_*: 141/300 correct printed two ways
    found = detect(make_run({"eval_top5": [40.0, 47.0, 47.00000010172526, 52.0]}))
    assert [(s.first_epoch, s.last_epoch) for s in found.stalls] == [(1, 2)]


def test_close_but_different_losses_are_not_a_stall():
    found = detect(make_run({"eval_loss": [2.3026580142974855, 2.302658945719401, 2.302660]}))
    assert found.stalls == ()


def test_learning_rate_plateaus_are_not_stalls():
    found = detect(make_run({"lr": [0.1] * 10 + [0.01] * 10}))
    assert found.stalls == ()


# ---------------------------------------------------------------------------------------------------------
# chance level


def test_chance_level_for_accuracy_top5_and_loss():
    classes = 1000
    ln_c = math.log(classes)
    run = make_run({
        "eval_top1": [0.1, 0.12, 0.09, 0.1, 2.5, 8.0, 15.0],
        "eval_top5": [0.5, 0.52, 0.49, 0.5, 7.0, 20.0, 33.0],
        "eval_loss": [ln_c, ln_c + 0.001, ln_c - 0.002, ln_c, 6.0, 5.1, 4.4],
        "train_loss": [ln_c + 0.01, ln_c, 6.7, 6.2, 5.9, 5.5, 5.0],
    }, {"num_classes": classes})
    ranges = {(c.metric, c.first_epoch, c.last_epoch) for c in detect(run).chance}
    assert ranges == {("eval_top1", 0, 3), ("eval_top5", 0, 3), ("eval_loss", 0, 3), ("train_loss", 0, 1)}
    top5 = next(c for c in detect(run).chance if c.metric == "eval_top5")
    assert top5.chance == pytest.approx(0.5) and top5.values[0] == 0.5


def test_no_chance_level_without_num_classes_or_for_top5_of_five_classes():
    run = make_run({"eval_top1": [10.0] * 5, "eval_top5": [100.0] * 5})
    assert detect(run).chance == ()
    five = make_run({"eval_top1": [20.0] * 5, "eval_top5": [100.0] * 5}, {"num_classes": 5})
    assert {c.metric for c in detect(five).chance} == {"eval_top1"}


# ---------------------------------------------------------------------------------------------------------
# non-finite values


def test_first_nan_with_its_lr():
    lr = [0.1 * (i + 1) for i in range(10)]
    loss = [2.3, 2.2, 2.1, 2.5, 3.9, 8.0, math.nan, math.nan, math.nan, math.nan]
    run = make_run({"train_loss": [2.0] * 10, "eval_loss": loss, "eval_top1": [10.0] * 10, "lr": lr})
    (first,) = detect(run).nonfinite
    assert (first.metric, first.epoch, first.count, first.last_finite_epoch) == ("eval_loss", 6, 4, 5)
    assert first.lr == pytest.approx(0.7) and math.isnan(first.value)


def test_inf_counts_and_missing_eval_rows_do_not():
    run = make_run({
        "train_loss": [2.0, 1.9, 1.8, math.inf, 1.7],
        "eval_loss": [2.1, math.nan, 2.0, 1.9, math.nan],   # validation skipped at epochs 1 and 4
        "eval_top1": [20.0, math.nan, 25.0, 27.0, math.nan],
        "eval_top1_ema": [math.nan, math.nan, math.nan, 10.0, 12.0],  # EMA pass only logged late
    })
    found = detect(run)
    assert [(n.metric, n.epoch, n.value) for n in found.nonfinite] == [("train_loss", 3, math.inf)]


def test_nonfinite_event_marks_a_nan_as_a_value():
    event = Event(kind="nonfinite", message="Loss: nan", source=SourceRef("train.log", 40), epoch=2,
                  data={"metric": "eval_loss"})
    run = make_run({"eval_loss": [2.0, 1.9, math.nan]}, events=(event,))
    assert [(n.metric, n.epoch) for n in detect(run).nonfinite] == [("eval_loss", 2)]
    assert detect(make_run({"eval_loss": [2.0, 1.9, math.nan]})).nonfinite == ()


def test_step_level_nan_reports_update_and_step_lr():
    per_epoch = 50
    loss = np.linspace(6.9, 3.0, 4 * per_epoch)
    loss[130:] = np.nan
    lr = np.linspace(0.01, 0.5, 4 * per_epoch)
    run = make_run({"train_loss": [6.0, 4.0, math.nan, math.nan]}, steps=make_steps(4, per_epoch, loss, lr))
    step = next(n for n in detect(run).nonfinite if n.metric == "step:train_loss")
    assert (step.epoch, step.update, step.unit) == (2, 130, "step")
    assert step.lr == pytest.approx(lr[130])


def test_step_log_without_a_loss_field_is_missing_not_nan():
    steps = make_steps(3, 10, np.full(30, np.nan))
    found = detect(make_run({"train_loss": [2.0, 1.9, 1.8]}, steps=steps))
    assert found.nonfinite == () and "step:train_loss" not in found.segments


def test_a_lone_trailing_nan_is_nonfinite_but_no_explosion():
    found = detect(make_run({"eval_loss": [3.2, 3.1, 3.3, math.nan], "eval_top1": [40.0, 41.0, 40.0, 39.0]}))
    assert [(n.metric, n.epoch) for n in found.nonfinite] == [("eval_loss", 3)]
    assert found.explosions == ()


# ---------------------------------------------------------------------------------------------------------
# spikes and explosions


def test_isolated_loss_spike_and_accuracy_drop_are_found():
    rng = np.random.default_rng(0)
    loss = 3.0 * np.exp(-np.arange(40) / 15) + 1.0 + rng.normal(0, 0.02, 40)
    top1 = 70 - 60 * np.exp(-np.arange(40) / 10) + rng.normal(0, 0.5, 40)
    loss[20] *= 3.0
    top1[25] -= 30.0
    found = detect(make_run({"eval_loss": loss.tolist(), "eval_top1": top1.tolist()}))
    assert [(s.metric, s.epoch) for s in found.spikes] == [("eval_loss", 20), ("eval_top1", 25)]
    assert found.spikes[0].baseline == pytest.approx(loss[20] / 3.0, rel=0.1)
    assert found.explosions == ()


def test_level_shift_is_not_a_spike():
    loss = [2.0] * 15 + [4.0] * 15
    assert detect(make_run({"train_loss": loss})).spikes == ()


def test_sustained_excursion_is_an_explosion_and_a_single_spike_is_not():
    loss = [2.3, 2.1, 2.0, 1.9, 1.8, 40.0, 55.0, 60.0, math.nan, math.nan]
    (boom,) = detect(make_run({"train_loss": loss, "eval_top1": [10.0] * 10})).explosions
    assert (boom.epoch, boom.last_epoch, boom.reaches_end, boom.peak) == (5, 9, True, 60.0)
    assert boom.reference == 2.0 and boom.threshold == pytest.approx(6.0)
    transient = [2.3, 2.1, 2.0, 9.0, 1.8, 1.7, 1.6]
    assert detect(make_run({"train_loss": transient})).explosions == ()


def test_huge_loss_from_the_first_epoch_explodes_against_ln_c():
    loss = [1.7e25, 4.7e24, 1.5e29, math.nan, math.nan]
    found = detect(make_run({"eval_loss": loss, "eval_top1": [10.0] * 5}, {"num_classes": 10}))
    (boom,) = found.explosions
    assert (boom.epoch, boom.reaches_end) == (0, True)
    assert boom.threshold == pytest.approx(20 * math.log(10))


def test_step_level_explosion():
    per_epoch = 1000
    loss = np.r_[np.linspace(6.9, 2.0, 6000), np.full(4000, 80.0)]
    run = make_run({"train_loss": [5.0] * 10}, steps=make_steps(10, per_epoch, loss))
    (boom,) = [e for e in detect(run).explosions if e.metric == "step:train_loss"]
    assert boom.unit == "step" and abs(boom.update - 6000) <= 10 and boom.epoch == 6


# ---------------------------------------------------------------------------------------------------------
# generalization gap and EMA gap


def test_generalization_gap_where_eval_loss_turns_up():
    rng = np.random.default_rng(1)
    t = np.arange(80)
    train = 3.0 * np.exp(-t / 20) + 0.2 + rng.normal(0, 0.01, 80)
    evals = np.where(t < 30, 2.0 - 0.03 * t, 1.1 + 0.02 * (t - 30)) + rng.normal(0, 0.01, 80)
    gap = detect(make_run({"train_loss": train.tolist(), "eval_loss": evals.tolist()})).gap
    assert gap is not None
    assert abs(gap.start_epoch - 30) <= 3 and gap.end_epoch == 79
    assert abs(gap.eval_loss_min_epoch - 30) <= 3
    assert gap.rise == pytest.approx(0.02 * 49, rel=0.15)
    assert gap.eval_slope_low > 0 and gap.train_slope_high < 0


def test_no_gap_while_eval_loss_sits_at_chance():
    # an EMA that has not caught up: eval loss creeps up around ln C while the model trains
    t = np.arange(30)
    evals = (math.log(1000) + 0.004 * t).tolist()
    train = (6.9 - 0.1 * t).tolist()
    found = detect(make_run({"train_loss": train, "eval_loss": evals}, {"num_classes": 1000}))
    assert found.segments["eval_loss"][0].label == "collapsed"
    assert found.gap is None


def test_no_gap_when_train_loss_rises_too():
    t = np.arange(40)
    rising = (1.0 + 0.02 * t).tolist()
    assert detect(make_run({"train_loss": rising, "eval_loss": rising})).gap is None


def test_ema_gap_far_epochs_and_silence_when_ema_keeps_up():
    t = np.arange(30)
    model = 10 + 60 * (1 - np.exp(-t / 6))
    lagging = np.r_[np.full(10, 10.0), model[:20]]
    gap = detect(make_run({"eval_top1_model": model.tolist(), "eval_top1_ema": lagging.tolist()})).ema_gap
    assert gap is not None and gap.epochs == tuple(range(30))
    assert gap.far_epochs[0] == 1 and gap.max_gap == pytest.approx(max(model - lagging))
    assert gap.threshold == pytest.approx(5.0)
    close = detect(make_run({"eval_top1_model": model.tolist(), "eval_top1_ema": (model - 0.5).tolist()}))
    assert close.ema_gap is not None and close.ema_gap.far_epochs == ()
    assert detect(make_run({"eval_top1": model.tolist()})).ema_gap is None


# ---------------------------------------------------------------------------------------------------------
# incomplete run, robustness


def test_incomplete_run_against_scheduled_and_config_epochs():
    values = {"train_loss": [2.0 - 0.01 * i for i in range(50)]}
    found = detect(make_run(values, epochs_scheduled=100))
    assert (found.incomplete.last_epoch, found.incomplete.missing) == (49, 50)
    timm06 = detect(make_run(values, {"epochs": 40, "sched": "cosine", "cooldown_epochs": 10}))
    assert timm06.incomplete is None and timm06.epochs_scheduled == 50
    short = detect(make_run(values, {"epochs": 60, "sched": "cosine", "cooldown_epochs": 0}))
    assert short.incomplete.epochs_scheduled == 60 and short.incomplete.basis == "args.yaml: epochs 60"


def test_empty_and_odd_runs_do_not_raise():
    empty = detect(make_run({}))
    assert empty.segments == {} and empty.schedule is None and empty.incomplete is None
    odd = make_run({"eval_top1": [1.0, 2.0, 3.0]}, {"num_classes": "ten", "epochs": "many"})
    object.__setattr__(odd, "epochs", pd.DataFrame(
        {"eval_top1": ["1.0", "oops", "3.0"], "note": ["a", "b", "c"]}, index=["0", "1", "1"]))
    found = detect(odd)
    assert set(found.segments) == {"eval_top1"} and found.num_classes is None


# ---------------------------------------------------------------------------------------------------------
# real timm runs (numbers from fixtures/runs/*/summary.csv)


def test_fixture_nan_run():
    found = detect(fixture_run("v1_nan"))
    assert [(n.metric, n.epoch, n.lr) for n in found.nonfinite] == [("eval_loss", 3, 10.0)]
    assert any(e.metric == "eval_loss" and e.epoch == 0 and e.reaches_end for e in found.explosions)
    assert found.segments["eval_loss"][-1].label == "collapsed"


def test_fixture_ema_lag_runs_sit_at_chance_with_a_stall():
    for name in ("v06_ema_lag", "v09_ema_lag", "v1_ema_lag"):
        found = detect(fixture_run(name))
        chance = [c for c in found.chance if c.metric == "eval_top1"]
        assert chance and chance[0].first_epoch == 0 and chance[0].length == found.epochs_scheduled, name
        assert all(s.label == "collapsed" for s in found.segments["eval_top1"]), name
    stall = max((s for s in detect(fixture_run("v06_ema_lag")).stalls if s.metric == "eval_top1"),
                key=lambda s: s.length)
    assert (stall.first_epoch, stall.last_epoch, stall.value) == (3, 19, 10.0)


def test_fixture_healthy_runs():
    for name in ("v1_healthy", "v09_healthy", "v06_healthy"):
        found = detect(fixture_run(name))
        assert found.explosions == () and found.nonfinite == () and found.incomplete is None, name
        assert not any(s.label == "collapsed" for s in found.segments["eval_top1"][1:]), name
        assert found.segments["train_loss"][-1].label in {"improving", "plateau"}


def test_fixture_lr_high_explodes_eval_loss():
    found = detect(fixture_run("v1_lr_high"))
    assert any(e.metric == "eval_loss" and e.epoch == 3 and e.reaches_end for e in found.explosions)
    assert found.schedule.warmup_epochs == 0 and found.schedule.peak_lr == 1.0


def test_fixture_runs_through_ingest_when_available():
    ingest = pytest.importorskip("mnv4_postmortem.analyzer.ingest")
    try:
        run = ingest.load_run(FIXTURE_RUNS / "v1_nan")
    except Exception as error:  # ingest under construction: its own tests own its failures
        pytest.skip(f"ingest not usable yet: {error}")
    found = detect(run)
    assert any(n.metric == "eval_loss" and n.epoch == 3 for n in found.nonfinite)


# ---------------------------------------------------------------------------------------------------------
# never a traceback on odd numbers

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64), st.just(0.0), st.just(10.0))


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(0, 25),
    columns=st.sets(st.sampled_from(["train_loss", "eval_loss", "eval_top1", "eval_top5", "lr",
                                     "eval_top1_model", "eval_top1_ema"]), max_size=7),
    data=st.data(),
    classes=st.sampled_from([None, 1, 10, 1000, "x"]),
)
def test_detect_survives_any_numbers(n, columns, data, classes):
    values = {c: data.draw(st.lists(_VALUES, min_size=n, max_size=n)) for c in columns}
    found = detect(make_run(values, {"num_classes": classes, "epochs": 20}))
    for name, segments in found.segments.items():
        assert name in columns
        assert all(s.start <= s.end for s in segments)
    assert all(s.length >= 2 for s in found.stalls)


def test_a_noisy_flat_plateau_is_not_a_rise_measured_from_its_lowest_point():
    """Issue 10: a healthy 300-epoch run whose eval loss sits on a plateau with a slight drift; measured from
    one noisy minimum it looked like a 9 % rise (overfitting), measured between segment lines it is noise."""
    from mnv4_postmortem.analyzer.engine import load_pack
    from mnv4_postmortem.analyzer.ingest.synthetic import synthetic_run
    from mnv4_postmortem.analyzer.pipeline import diagnose as analyze

    rng = np.random.default_rng(7)
    t = np.arange(300)
    train = 3.5 * np.exp(-t / 60) + 0.9 + rng.normal(0, 0.005, 300)
    evals = np.where(t < 100, 3.0 - 0.018 * t, 1.2 + 0.0002 * (t - 100)) + rng.normal(0, 0.03, 300)
    evals[150] = 1.1  # one noisy low epoch
    naive_rise = np.median(evals[-3:]) - evals[:300].min()
    assert naive_rise >= 0.05 * evals.min()  # the old yardstick would have called it a material rise
    run = synthetic_run({"num_classes": 1000, "epochs": 300}, {"train_loss": train.tolist(), "eval_loss": evals.tolist()})
    gap = detect(run).gap
    assert gap is None or gap.rise < 3 * gap.noise or gap.rise < 0.05 * gap.eval_loss_min
    causes = [f.cause for f in analyze(run, load_pack()).findings]
    assert "overfitting" not in causes
