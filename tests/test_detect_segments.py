"""segment_series: breakpoints scored against known truth, labels, index convention, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruptures.metrics import precision_recall

from _detect_synth import piecewise_signal
from mnv4_postmortem.analyzer.detect import Segment, segment_series
from mnv4_postmortem.analyzer.detect import segments as segments_mod
from mnv4_postmortem.analyzer.detect.segments import MIN_SIZE, CostLinearTrend

SEEDS = range(8)


def breakpoints(segments: tuple[Segment, ...]) -> list[int]:
    """Segment ends in ruptures' convention (last = n)."""
    return [s.end for s in segments if s.start != s.end]


@pytest.mark.parametrize("kind,n,n_bkps", [("constant", 150, 3), ("linear", 300, 4), ("linear", 600, 6)])
def test_breakpoints_match_truth_within_margin(kind, n, n_bkps):
    scores = []
    for seed in SEEDS:
        x, y, truth = piecewise_signal(seed, n, n_bkps, kind)
        found = breakpoints(segment_series(x, y, "signal"))
        scores.append(precision_recall(truth, found, margin=max(3, n // 50)))
    precision, recall = np.mean(scores, axis=0)
    assert precision >= 0.85, scores
    assert recall >= 0.85, scores


def test_pure_noise_gives_one_segment_for_most_seeds():
    rng = np.random.default_rng(0)
    counts = [len(segment_series(np.arange(200.0), rng.standard_normal(200), "signal")) for _ in range(10)]
    assert sum(c == 1 for c in counts) >= 8, counts


def test_segments_tile_the_finite_series_in_order():
    x, y, _ = piecewise_signal(3, 300, 4, "linear")
    segments = segment_series(x, y, "signal")
    assert segments[0].start == 0 and segments[-1].end == 300
    for left, right in zip(segments, segments[1:]):
        assert left.end == right.start
        assert left.x_last < right.x_first
    for s in segments:
        assert s.n == s.end - s.start
        assert s.first_value == y[s.start] and s.last_value == y[s.end - 1]
        assert s.level == pytest.approx(float(np.median(y[s.start:s.end])))


def test_labels_follow_metric_direction():
    x = np.arange(40.0)
    rising = 20 + 1.5 * x + np.random.default_rng(1).normal(0, 0.3, 40)
    (acc,) = segment_series(x, rising, "eval_top1")
    (loss,) = segment_series(x, rising, "eval_loss")
    (forced,) = segment_series(x, rising, "eval_loss", higher_is_better=True)
    assert (acc.label, loss.label, forced.label) == ("improving", "degrading", "improving")
    assert acc.trend == loss.trend == "rising"
    assert acc.slope_low <= 1.5 <= acc.slope_high
    assert acc.slope == pytest.approx(1.5, abs=0.05)
    assert acc.noise == pytest.approx(0.3, rel=0.5)


def test_plateau_then_improvement_is_found_at_the_bend():
    rng = np.random.default_rng(2)
    x = np.arange(60.0)
    y = np.where(x < 25, 10.0, 10.0 + 2.0 * (x - 25)) + rng.normal(0, 0.5, 60)
    segments = segment_series(x, y, "eval_top1")
    assert [s.label for s in segments] == ["plateau", "improving"]
    assert abs(segments[1].x_first - 25) <= 2


def test_chance_level_segment_is_collapsed():
    rng = np.random.default_rng(3)
    x = np.arange(30.0)
    y = np.r_[10 + rng.normal(0, 0.4, 15), 10 + 3 * np.arange(1, 16) + rng.normal(0, 0.4, 15)]
    segments = segment_series(x, y, "eval_top1", chance=10.0)
    assert segments[0].label == "collapsed"
    assert segments[-1].label == "improving"
    assert segment_series(x, y, "eval_top1")[0].label == "plateau"  # without a chance level


def test_large_alternating_moves_are_oscillating():
    x = np.arange(30.0)
    y = 2.0 + np.where(np.arange(30) % 2 == 0, 1.0, -1.0) + np.random.default_rng(4).normal(0, 0.05, 30)
    labels = {s.label for s in segment_series(x, y, "eval_loss")}
    assert labels == {"oscillating"}


def test_exploding_loss_is_split_where_it_explodes():
    loss = np.r_[2.3 - 0.05 * np.arange(10), 1e12 * np.exp(np.random.default_rng(5).normal(0, 0.5, 10))]
    segments = segment_series(np.arange(20.0), loss, "eval_loss")
    assert segments[0].end == 10  # the exploded part may split further: its noise is far larger
    assert segments[0].label == "improving"
    assert all(s.level > 1e10 for s in segments[1:])


def test_an_isolated_spike_does_not_split_a_series():
    rng = np.random.default_rng(6)
    y = 3.0 - 0.02 * np.arange(50) + rng.normal(0, 0.02, 50)
    y[20] = 9.0
    segments = segment_series(np.arange(50.0), y, "train_loss")
    assert len(segments) == 1 and segments[0].label == "improving"


def test_nonfinite_stretch_is_a_zero_length_collapsed_segment():
    y = np.array([5.0, 4.0, 3.0, np.nan, np.inf, 2.0, 1.9, 1.8])
    segments = segment_series(np.arange(8.0), y, "train_loss")
    assert [(s.start, s.end, s.n, s.label) for s in segments] == [
        (0, 3, 3, "improving"), (3, 3, 2, "collapsed"), (3, 6, 3, "improving"),
    ]
    assert (segments[1].x_first, segments[1].x_last) == (3.0, 4.0)
    assert math.isnan(segments[1].level)


def test_three_points_get_one_segment_with_a_confidence_interval():
    (s,) = segment_series([0, 1, 2], [1.0, 2.0, 3.5], "eval_top1")
    assert (s.start, s.end, s.n) == (0, 3, 3)
    assert s.slope_low <= s.slope <= s.slope_high
    assert not math.isnan(s.noise)


@pytest.mark.parametrize("y", [[4.0], [4.0, 3.0]])
def test_one_or_two_points_get_one_segment_without_ci(y):
    (s,) = segment_series(np.arange(len(y), dtype=float), y, "eval_loss")
    assert s.n == len(y)
    assert math.isnan(s.slope_low) and math.isnan(s.slope_high) and math.isnan(s.noise)
    assert s.label == ("plateau" if len(y) == 1 else "improving")


def test_no_finite_point_gives_no_segment():
    assert segment_series([], [], "eval_loss") == ()
    assert segment_series([0, 1, 2], [np.nan, np.nan, np.inf], "eval_loss") == ()


def test_exactly_constant_series_is_one_plateau():
    (s,) = segment_series(np.arange(50.0), np.full(50, 7.25), "eval_top1")
    assert (s.label, s.slope, s.noise, s.n) == ("plateau", 0.0, 0.0, 50)


def test_quantized_accuracy_with_rare_moves_does_not_explode_into_segments():
    y = np.full(40, 10.0)
    y[[5, 17, 30]] = 9.6667
    segments = segment_series(np.arange(40.0), y, "eval_top1", chance=10.0)
    assert len(segments) <= 2
    assert all(s.label == "collapsed" for s in segments)


def test_unsorted_input_is_sorted_and_bad_shapes_are_refused():
    segments = segment_series([2, 0, 1], [3.0, 1.0, 2.0], "eval_top1")
    assert (segments[0].x_first, segments[0].first_value) == (0.0, 1.0)
    with pytest.raises(ValueError):
        segment_series([0, 1], [1.0], "eval_top1")


def test_million_point_step_series_maps_breakpoints_to_raw_indices():
    rng = np.random.default_rng(7)
    n = 1_000_000
    y = np.where(np.arange(n) < 600_000, 4.0, 2.5) + rng.normal(0, 0.5, n)
    y[123_456] = np.nan
    segments = segment_series(np.arange(n, dtype=float), y, "step:train_loss", "step")
    finite = [s for s in segments if s.start != s.end]
    assert finite[-1].end == n - 1  # indices count finite values only
    change = next(s for s in finite if s.level < 3.0)
    assert abs(change.x_first - 600_000) <= 0.01 * n
    assert all(s.unit == "step" for s in segments)


def test_cost_matches_least_squares_line_error():
    rng = np.random.default_rng(8)
    y = rng.normal(size=30)
    x = np.sort(rng.uniform(0, 10, 30))
    cost = CostLinearTrend().fit(np.column_stack([y, x]))
    for start, end in [(0, 30), (3, 11), (10, 13)]:
        coef = np.polyfit(x[start:end], y[start:end], 1)
        expected = float(np.sum((np.polyval(coef, x[start:end]) - y[start:end]) ** 2))
        assert cost.error(start, end) == pytest.approx(expected, rel=1e-6, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(math.nan), st.just(math.inf)), max_size=40))
def test_any_input_gives_tiling_segments(values):
    y = np.asarray(values, dtype=float)
    segments = segment_series(np.arange(y.size, dtype=float), y, "eval_loss", chance=2.3)
    n_finite = int(np.isfinite(y).sum())
    if n_finite == 0:
        assert segments == ()
        return
    position = 0
    for s in segments:
        assert s.start == position
        position = s.end
        assert s.x_first <= s.x_last
        assert s.label in {"improving", "plateau", "degrading", "collapsed", "oscillating"}
    assert position == n_finite


def _ruptures_pelt(signal: np.ndarray, penalty: float, jump: int) -> list[int]:
    rpt = pytest.importorskip("ruptures")
    from ruptures.base import BaseCost

    class LinearTrend(CostLinearTrend, BaseCost):
        pass

    return [int(e) for e in rpt.Pelt(custom_cost=LinearTrend(), min_size=MIN_SIZE, jump=jump).fit(signal).predict(pen=penalty)]


@pytest.mark.parametrize("jump", [3, 4, 7])
@pytest.mark.parametrize("seed", range(6))
def test_pelt_finds_ruptures_breakpoints(seed: int, jump: int):
    """The search (segments._pelt) against ruptures' Pelt, the reference implementation, on the same cost."""
    x, y, _ = piecewise_signal(seed, 40 * jump, 4, "linear")
    signal = np.column_stack([y, x])
    cost = CostLinearTrend().fit(signal)
    penalty = segments_mod.PENALTY_C * np.var(np.diff(y)) * math.log(y.size)
    assert segments_mod._pelt(cost, y.size, penalty, jump) == _ruptures_pelt(signal, penalty, jump)


@pytest.mark.parametrize("seed", range(6))
def test_pelt_exact_grid_is_never_worse_than_ruptures(seed: int):
    """At jump 1 and 2, ruptures' pruning step pairs starts with the wrong candidates where a start has no
    partition yet (starts 1 and 2 before MIN_SIZE), so it can prune the optimum; ours is the exact minimum."""
    x, y, _ = piecewise_signal(seed, 70, 2, "linear")  # 3 breaks 20+ points apart do not fit in 70 points
    signal = np.column_stack([y, x])
    cost = CostLinearTrend().fit(signal)
    penalty = segments_mod.PENALTY_C * np.var(np.diff(y)) * math.log(y.size)

    def total(ends: list[int]) -> float:
        return sum(cost.error(a, b) + penalty for a, b in zip([0, *ends[:-1]], ends))

    for jump in (1, 2):
        ours, theirs = segments_mod._pelt(cost, y.size, penalty, jump), _ruptures_pelt(signal, penalty, jump)
        assert total(ours) <= total(theirs) + 1e-9 * abs(total(theirs))
