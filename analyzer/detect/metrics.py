"""What a metric name says about the metric, and robust scale estimates shared by the detectors.

Names follow ``model.EPOCH_COLUMNS`` (``train_loss``, ``eval_top1_ema``, ...); step-level series are
named ``"step:<column>"``. Unknown names (TensorBoard tags without an alias) are classified by the same
substrings, so ``Loss/train`` is a loss and ``val_acc1`` an accuracy.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable

import numpy as np

# Chance-level tolerances. An untrained or dead classifier predicts (nearly) uniformly: top-1 at 100/C %,
# top-5 at 500/C %, cross-entropy at ln C (with or without label smoothing: the smoothed target still sums
# to one, so a uniform prediction costs exactly ln C). Small validation sets scatter accuracy around chance
# (300 images, C=10: one sigma is 1.7 points), so accuracies get a wide relative band; a loss at chance is
# a near-uniform softmax and sits very close to ln C, so its band is narrow.
CHANCE_ACC_REL_TOL = 0.25     # |acc - chance| <= 25 % of chance ...
CHANCE_ACC_ABS_TOL = 0.2      # ... but never tighter than 0.2 points (C=1000: chance 0.1 % -> 0..0.3 %)
CHANCE_LOSS_REL_TOL = 0.02    # |loss - ln C| <= 2 % of ln C (C=10: +-0.046, C=1000: +-0.138)

# A robust sigma never reported below this fraction of the series' scale: keeps penalties and z-scores
# finite on quantized or float-rounded series without inventing noise that is not there.
SIGMA_FLOOR_REL = 1e-9

MAD_TO_SIGMA = 1.4826  # 1/Phi^-1(3/4): MAD of Gaussian data times this is its standard deviation

# diff_noise drops the largest 20 % of centred differences. For a standard normal Z cut at its 80 %
# two-sided quantile q = 1.2816, E[Z^2 | |Z| < q] = 1 - 2 q phi(q) / 0.8 = 0.4377: the correction that
# makes the trimmed mean square unbiased for Gaussian noise.
DIFF_TRIM = 0.2
_TRIMMED_SECOND_MOMENT = 1.0 - 2.0 * 1.2815516 * math.exp(-0.5 * 1.2815516**2) / math.sqrt(2.0 * math.pi) / 0.8

_ACCURACY = re.compile(r"top-?\d|acc|prec", re.IGNORECASE)
_TOPK = re.compile(r"(?:top-?|prec|acc@?)(\d+)", re.IGNORECASE)


def base_name(metric: str) -> str:
    """The column part of a metric name: ``"step:train_loss"`` -> ``"train_loss"``."""
    return metric.rsplit(":", 1)[-1]


def is_loss(metric: str) -> bool:
    return "loss" in base_name(metric).lower()


def is_accuracy(metric: str) -> bool:
    return not is_loss(metric) and bool(_ACCURACY.search(base_name(metric)))


def higher_is_better(metric: str) -> bool | None:
    """True for accuracies, False for losses, None when the name does not say (lr, throughput)."""
    if is_loss(metric):
        return False
    if is_accuracy(metric):
        return True
    return None


_LEARNING_RATE = re.compile(r"(?:^|[^a-z])lr(?:$|[^a-z])|learning.?rate", re.IGNORECASE)


def is_learning_rate(metric: str) -> bool:
    """``lr``, ``step:lr``, ``lr/group0``, ``learning_rate``: a schedule, not a training outcome."""
    return bool(_LEARNING_RATE.search(base_name(metric)))


def top_k(metric: str) -> int | None:
    """k of a top-k accuracy name (``eval_top5_ema`` -> 5, ``eval_prec1`` -> 1); None otherwise."""
    if not is_accuracy(metric):
        return None
    match = _TOPK.search(base_name(metric))
    return int(match.group(1)) if match else None


def valid_num_classes(value: object) -> int | None:
    """``num_classes`` from a config as an int >= 2, or None when missing or nonsensical."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        number = int(value) if value.isdigit() else None
    elif isinstance(value, (int, np.integer)):
        number = int(value)
    elif isinstance(value, (float, np.floating)) and float(value).is_integer():
        number = int(value)
    else:
        number = None
    return number if number is not None and number >= 2 else None


def chance_value(metric: str, num_classes: int | None) -> float | None:
    """The value a uniform C-way classifier reports for ``metric``; None when not a classification metric.

    Top-k with k >= C is 100 % for every model and tells nothing, so it has no chance level.
    """
    classes = valid_num_classes(num_classes)
    if classes is None:
        return None
    if is_loss(metric):
        return math.log(classes)
    k = top_k(metric)
    if k is None or k >= classes:
        return None
    return 100.0 * k / classes


def chance_levels(metric_names: Iterable[str], num_classes: int | None) -> dict[str, float]:
    """metric -> :func:`chance_value`, for each metric that has one: the run's chance levels, computed once by
    ``detect`` (``Detection.chance_levels``) and read from there by the detectors and the report."""
    levels = ((name, chance_value(name, num_classes)) for name in metric_names)
    return {name: value for name, value in levels if value is not None}


def chance_tolerance(metric: str, chance: float) -> float:
    """Half-width of the band around ``chance`` that still counts as chance level (see the constants)."""
    if is_loss(metric):
        return CHANCE_LOSS_REL_TOL * abs(chance)
    return max(CHANCE_ACC_REL_TOL * abs(chance), CHANCE_ACC_ABS_TOL)


def robust_sigma(values: np.ndarray) -> float:
    """1.4826 * MAD: the standard deviation a Gaussian would have, ignoring outliers. 0.0 when empty."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return 0.0
    return float(MAD_TO_SIGMA * np.median(np.abs(values - np.median(values))))


def diff_noise(y: np.ndarray) -> float:
    """Point noise of a series from its first differences, robust to level shifts and outliers.

    The differences of y = trend + noise are the local slope plus noise with variance 2 sigma^2. Centred on
    their median (linear trends drop out), the largest ``DIFF_TRIM`` share of them (level shifts, spikes)
    is dropped and sigma is the RMS of the rest, corrected for the trimming and divided by sqrt 2.

    Why not 1.4826 * MAD(diff y) / sqrt 2: the MAD has 37 % Gaussian efficiency, and the change-point
    penalty grows with sigma^2. On a 12-point series one MAD estimate in ten is below 0.52 sigma (penalty
    x0.27), and a straight noisy line came out in several segments one time in three; the trimmed RMS
    (10th percentile 0.67 sigma) halves that (``bench/bench_detect.py --compare-methods``).

    Quantized series (accuracies of a small validation set) can have mostly-zero differences and a
    trimmed RMS of 0: then the plain standard deviation of the differences is used, so the few real moves
    count as noise rather than as infinitely significant. Exactly constant input gives 0.0.
    """
    y = np.asarray(y, dtype=float)
    if y.size < 2:
        return 0.0
    diffs = np.diff(y)
    deviations = np.sort(np.abs(diffs - np.median(diffs)))
    kept = deviations[: max(1, math.ceil((1.0 - DIFF_TRIM) * deviations.size))]
    sigma = math.sqrt(float(np.mean(kept * kept)) / _TRIMMED_SECOND_MOMENT) / math.sqrt(2.0)
    if sigma == 0.0:
        sigma = float(np.std(diffs)) / math.sqrt(2.0)
    if sigma == 0.0:
        return 0.0
    return max(sigma, SIGMA_FLOOR_REL * max(1.0, float(np.median(np.abs(y)))))


def diff_mad_noise(y: np.ndarray) -> float:
    """Point noise as 1.4826 * MAD(diff y) / sqrt 2: less precise than ``diff_noise`` but with a 50 %
    breakdown point, so the outliers it is used to judge cannot inflate it. Falls back on ``diff_noise``
    when the MAD is 0 (quantized or mostly constant series)."""
    y = np.asarray(y, dtype=float)
    if y.size < 2:
        return 0.0
    sigma = robust_sigma(np.diff(y)) / math.sqrt(2.0)
    if sigma == 0.0:
        return diff_noise(y)
    return max(sigma, SIGMA_FLOOR_REL * max(1.0, float(np.median(np.abs(y)))))


def block_medians(values: np.ndarray, block: int, *, presorted: bool = False) -> np.ndarray:
    """Median of each run of ``block`` consecutive values (the last block may be shorter).

    ``presorted``: the values ascend (x positions), so each median is read off the block's middle.
    """
    values = np.asarray(values, dtype=float)
    if block <= 1 or values.size == 0:
        return values.copy()
    full = values.size // block
    if presorted:
        starts = np.arange(0, values.size, block)
        sizes = np.minimum(block, values.size - starts)
        return (values[starts + (sizes - 1) // 2] + values[starts + sizes // 2]) / 2.0
    medians = np.median(values[: full * block].reshape(full, block), axis=1) if full else np.empty(0)
    if values.size > full * block:
        medians = np.append(medians, np.median(values[full * block:]))
    return medians


def runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open ``[start, end)`` index ranges of the maximal runs of True in ``mask``."""
    mask = np.asarray(mask, dtype=bool)
    if mask.size == 0:
        return []
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), ends.tolist()))


# Isolated outliers: a point (or two in a row) that sits beyond *both* neighbouring contexts, the median of
# the three values before it and of the three after it, while those contexts agree with each other. A
# level shift has contexts that disagree, so it is never an outlier; a point at either end has only one
# context, so it never is either (nothing shows the series came back).
OUTLIER_CONTEXT = 3              # points in each neighbouring context
OUTLIER_CONTEXT_AGREEMENT = 0.5  # |left - right| <= this x the excursion's distance from their mean


@dataclass(frozen=True, slots=True, eq=False)
class Outliers:
    """Result of ``isolated_outliers``: per point, membership, the neighbours' level and a signed z."""

    mask: np.ndarray
    baseline: np.ndarray     # mean of the two contexts (NaN where the point is not an outlier)
    z: np.ndarray            # (y - baseline) / sigma, 0.0 where the point is not an outlier
    sigma: float             # ``diff_mad_noise(y)``


def isolated_outliers(y: np.ndarray, threshold: float, max_run: int = 2) -> Outliers:
    """Runs of 1..``max_run`` points beyond both neighbouring contexts by >= ``threshold`` sigma.

    sigma is ``diff_mad_noise(y)`` (high breakdown: a spike cannot hide itself by raising it). Vectorised
    (a median of three is a min/max expression), so a 10^6-point step series costs tens of milliseconds.
    """
    y = np.asarray(y, dtype=float)
    n = y.size
    mask = np.zeros(n, dtype=bool)
    baseline = np.full(n, np.nan)
    z = np.zeros(n)
    sigma = diff_mad_noise(y[np.isfinite(y)])
    if n < 3 or sigma == 0.0:
        return Outliers(mask, baseline, z, sigma)
    left = _median3(_shift(y, 3), _shift(y, 2), _shift(y, 1))
    bar = threshold * sigma
    for k in range(1, max_run + 1):
        right = _median3(_shift(y, -k), _shift(y, -k - 1), _shift(y, -k - 2))
        low, high = np.fmin(left, right), np.fmax(left, right)
        centre = (left + right) / 2.0
        up = np.ones(n, dtype=bool)
        down = np.ones(n, dtype=bool)
        excursion = np.full(n, np.inf)
        for j in range(k):
            point = _shift(y, -j)
            with np.errstate(invalid="ignore"):
                up &= point - high >= bar
                down &= low - point >= bar
            excursion = np.fmin(excursion, np.abs(point - centre))
        with np.errstate(invalid="ignore"):
            agree = np.abs(left - right) <= OUTLIER_CONTEXT_AGREEMENT * excursion
        both_sides = np.isfinite(left) & np.isfinite(right)
        starts = np.flatnonzero((up | down) & agree & both_sides)
        for start in _sparse(starts, k):
            if mask[max(0, start - 1):start + k + 1].any():
                continue  # already part of (or touching) a shorter excursion
            mask[start:start + k] = True
            baseline[start:start + k] = centre[start]
            z[start:start + k] = (y[start:start + k] - centre[start]) / sigma
    return Outliers(mask, baseline, z, sigma)


def _sparse(starts: np.ndarray, k: int) -> np.ndarray:
    """Candidates with no other candidate within the context (3 points) of either side.

    Outliers are rare by nature; a candidate every other point is a series that alternates (an
    oscillation), where each point looks like a spike against its neighbours.
    """
    if starts.size < 2:
        return starts
    gaps = np.diff(starts)
    reach = k + OUTLIER_CONTEXT
    lonely_before = np.r_[True, gaps > reach]
    lonely_after = np.r_[gaps > reach, True]
    return starts[lonely_before & lonely_after]


def _shift(y: np.ndarray, by: int) -> np.ndarray:
    """``out[i] = y[i - by]`` with NaN where that falls outside ``y``."""
    out = np.full(y.size, np.nan)
    if by == 0:
        out[:] = y
    elif 0 < by < y.size:
        out[by:] = y[:-by]
    elif 0 < -by < y.size:
        out[:by] = y[-by:]
    return out


def _median3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Element-wise median of three, ignoring NaN (two values: the nearer ``b``; all NaN: NaN)."""
    return np.fmax(np.fmin(a, b), np.fmin(np.fmax(a, b), c))


# Two-sided 95% normal quantile. Theil-Sen is computed here rather than with scipy.stats.theilslopes
# because scipy's per-call overhead (~1 ms: argument policy wrappers, a norm.ppf per call) dominated
# detection time with hundreds of segments; a test checks both give the same numbers.
_Z_975 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class TheilSen:
    slope: float
    low_slope: float
    high_slope: float


def theil_sen(y: np.ndarray, x: np.ndarray) -> TheilSen:
    """Theil-Sen slope with Sen's (1968) 95% confidence interval, ties-corrected.

    Same estimator and interval as ``scipy.stats.theilslopes(y, x, alpha=0.95)`` (a test checks
    they agree): the median of all pairwise slopes with distinct x, and the order statistics of
    those slopes that bound it under Kendall's tau variance.
    """
    x = np.asarray(x, dtype="float64")
    y = np.asarray(y, dtype="float64")
    i, j = np.triu_indices(x.size, k=1)
    dx = x[j] - x[i]
    keep = dx != 0
    slopes = np.sort((y[j] - y[i])[keep] / dx[keep])
    if slopes.size == 0:
        return TheilSen(math.nan, math.nan, math.nan)
    n = y.size
    sigsq = (n * (n - 1) * (2 * n + 5) - _tie_term(x) - _tie_term(y)) / 18.0
    if sigsq < 0:  # all values tied: no interval (scipy returns NaN too)
        return TheilSen(float(np.median(slopes)), math.nan, math.nan)
    spread = _Z_975 * math.sqrt(sigsq)
    count = slopes.size
    upper = min(int(round((count + spread) / 2.0)), count - 1)
    lower = max(int(round((count - spread) / 2.0)) - 1, 0)
    return TheilSen(float(np.median(slopes)), float(slopes[lower]), float(slopes[upper]))


def _tie_term(values: np.ndarray) -> float:
    _, counts = np.unique(values, return_counts=True)
    ties = counts[counts > 1].astype("float64")
    return float(np.sum(ties * (ties - 1) * (2 * ties + 5)))
