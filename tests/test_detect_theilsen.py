"""Our numpy Theil-Sen (kept so detection need not import scipy.stats) equals scipy's on any input."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import theilslopes

from mnv4_postmortem.analyzer.detect.metrics import theil_sen


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-50, 50), min_size=3, max_size=60), st.booleans())
def test_matches_scipy(values, tied_x):
    y = np.array(values, dtype=float) / 10
    x = np.arange(y.size, dtype=float)
    if tied_x:
        x = np.floor(x / 2)  # repeated x values exercise the ties correction
    ours = theil_sen(y, x)
    ref = theilslopes(y, x, alpha=0.95)
    assert np.allclose([ours.slope, ours.low_slope, ours.high_slope], [ref.slope, ref.low_slope, ref.high_slope], equal_nan=True)


def test_recovers_a_known_slope():
    rng = np.random.default_rng(3)
    x = np.arange(200, dtype=float)
    y = 0.5 * x + rng.normal(0, 1, x.size)
    fit = theil_sen(y, x)
    assert fit.low_slope < 0.5 < fit.high_slope
    assert abs(fit.slope - 0.5) < 0.02
