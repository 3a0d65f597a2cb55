"""Gradient-norm detectors: the principles in detect/gradients.py on series with known answers.

The must-fire / must-not-fire cases on real trainer output are the rule tests in rules/gradients/
(fixtures/trainer/), run by test_rules_pack.py; these check the arithmetic at the edges.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.detect import gradients as g


def series(y, name="grad_norm"):
    y = np.asarray(y, dtype=float)
    return g.GradSeries(name, "step", np.arange(1, y.size + 1, dtype=float), y)


def noisy(level, n, seed=0, spread=0.3):
    rng = np.random.default_rng(seed)
    return level * np.exp(rng.normal(0, spread, n))


def test_geometric_rise_of_two_decades_is_an_explosion_with_its_growth_per_step():
    n = 200
    y = 0.5 * 10 ** (np.arange(n) * 2 / n) * np.exp(np.random.default_rng(1).normal(0, 0.2, n))
    found = g.find_explosion(series(y))
    assert found is not None
    assert found.growth > 30
    # 2 decades over 200 steps: 10 ** (2 / 200) per step
    assert math.isclose(found.growth_per_step, 10 ** (2 / n), rel_tol=0.01)
    assert found.growth_per_step_low > 1


def test_a_flat_noisy_norm_and_a_slow_rise_below_a_decade_are_not():
    assert g.find_explosion(series(noisy(2.0, 300))) is None
    n = 300
    rise = 1.0 * 10 ** (np.arange(n) * 0.8 / n) * np.exp(np.random.default_rng(2).normal(0, 0.1, n))
    assert g.find_explosion(series(rise)) is None  # 6x: real growth, CI above 1, but not an order of magnitude


def test_single_spikes_do_not_explode_but_an_overflow_does():
    y = noisy(1.0, 200)
    y[[50, 120]] = 1e4
    assert g.find_explosion(series(y)) is None
    y[150:] = np.inf
    found = g.find_explosion(series(y))
    assert found is not None and found.nonfinite_step == 151


def test_rise_then_collapse_is_still_an_explosion_judged_up_to_the_peak():
    y = np.concatenate([np.geomspace(1, 1e3, 60), np.full(140, 1e-2)]) * noisy(1.0, 200, spread=0.1)
    found = g.find_explosion(series(y))
    assert found is not None and found.peak_step < 80


def test_vanishing_needs_three_consecutive_points_under_1e_7():
    y = noisy(1e-3, 50)
    y[10] = y[20] = 1e-9  # two isolated quiet steps
    assert g.find_vanishing(series(y)) is None
    y[30:33] = 1e-9
    found = g.find_vanishing(series(y))
    assert found is not None and (found.first_step, found.last_step, found.points) == (31, 33, 3)
    assert found.value == 1e-9


def test_weak_group_is_three_decades_below_the_median_group():
    medians = {"stem": 1e-2, "stage0": 0.5, "stage1": 1.0, "stage2": 2.0, "head": 3.0}
    assert g.find_weak_groups(medians) == ()  # 100x below: what sizes can explain
    medians["stem"] = 1e-4
    weak = g.find_weak_groups(medians)
    assert [w.group for w in weak] == ["stem"] and math.isclose(weak[0].decades_below, 4.0)
    medians["stage0"] = 0.0  # no gradient at all: frozen
    assert [w.group for w in g.find_weak_groups(medians)][0] == "stage0"
    assert g.find_weak_groups({"a": 1e-9, "b": 1.0}) == ()  # two groups have no "median of the others"


def test_gradient_series_reads_step_columns_by_update_and_skips_missing_points():
    steps = pd.DataFrame({
        "update": [1, 2, 3, 4],
        "grad_norm": [1.0, np.nan, 2.0, np.inf],
        "grad_norm/head": [0.5, 0.6, 0.7, 0.8],
        "train_loss": [2.0, 2.0, 2.0, 2.0],
    })

    class _Run:
        epochs = pd.DataFrame()

    run = _Run()
    run.steps = steps
    out = g.gradient_series(run)
    assert set(out) == {"grad_norm", "grad_norm/head"}
    assert out["grad_norm"].x.tolist() == [1.0, 3.0, 4.0]  # NaN = not logged; inf = overflowed
    facts = g.find_gradient_facts(out)
    assert facts.groups[0][0] == "head" and math.isclose(facts.groups[0][1], 0.65)
