"""Change-point segmentation of one metric series into labelled regimes.

Model and search (a cost times a search, as ruptures composes them; the search is ``_pelt`` here, checked
against ``ruptures.Pelt`` in the tests, because importing ruptures imports scipy: over a second and ~70 MB
of start-up for every ``report``):

* **Cost: piecewise linear** (``CostLinearTrend``), the least-squares error of a straight line fitted to
  each segment against its x. Training curves are trends, not steps: on an exponential loss decay with
  noise a piecewise-constant ``l2`` model (``KernelCPD(kernel="linear")``) cuts a staircase of 28-47
  segments where the linear-trend model uses 6-8, and on seeded piecewise-linear signals its breakpoint
  precision is 0.06-0.12 against 0.97-1.00 (``bench/bench_detect.py --compare-methods``). On
  piecewise-constant signals both score 1.00. The error comes from prefix sums, O(1) per segment, unlike
  ruptures' own ``"linear"`` cost, which calls ``lstsq`` for every candidate.
* **Search: PELT** (``_pelt``; ruptures' ``Pelt``), the exact minimiser of cost + penalty x breakpoints. Its Python loop
  costs O(n^2) without real change points (0.2-0.5 s at 600 points), so the search runs on a grid of
  ``SEARCH_GRID`` candidate positions (``jump = ceil(n / SEARCH_GRID)``; exact up to 80 points) and each
  breakpoint is then polished at full resolution: moved to its best position between its neighbours,
  dropped when merging its two segments costs less than the penalty, and two breakpoints that straddle
  one change between grid points are replaced by one. On seeded signals of 300-600 points this scores
  the exact search's precision/recall (1.00/1.00) at 1/2 to 1/7 of its time, and 0.97/0.97 at 2,000
  points where the exact search is out of reach. ``rpt.Binseg`` (greedy) is as fast but adds spurious
  breakpoints on trend changes (precision 0.60-0.67).
* **Penalty: BIC-like, with the noise estimated from the data**: ``pen = PENALTY_C * sigma^2 * ln(n)``,
  sigma the robust noise of the first differences (``metrics.diff_noise``: a trimmed RMS; the plain
  1.4826 * MAD(diff y) / sqrt 2 is too erratic on 12-point series, see there). Each extra segment adds
  three parameters (start, intercept, slope) and Schwarz's criterion with known variance charges
  ``sigma^2 ln n`` per parameter, which gives c = 3; c = 4 adds one for the search over positions, which
  ends in the best of many candidate splits. On the seeded benchmark straight noisy lines of 12-20 points
  stay one segment 88-90 % of the time at c = 4 against 80 % at c = 3, with the same precision/recall on
  real changes. Fixed for every run; nothing is tuned per run.
* **Resolution floor**: sigma is at least ``RESOLUTION_FLOOR`` (0.5 %) of the series' 5-95 % range. Nearly
  noiseless curves (an LR schedule, an EMA's eval loss on 50k images) would otherwise be cut into a
  straight piece every few epochs wherever they bend (22 segments for one 300-epoch EMA eval loss, 13
  for a cosine LR; 8 and 8 with the floor). A post-mortem reads regimes, not sub-percent bends; noisy
  metrics are not affected (their own noise is above the floor).

Before the search (search signal only; segment statistics always use the raw values):

* losses spanning more than two decades (all values > 0, max/min > ``LOG_SEARCH_RANGE``) are searched on
  ``log(y)``: an exploding run spans 2.3 to 10^15, where linear residuals see nothing but the largest
  values. Healthy losses (6.9 -> 0.5) stay linear: their noise is roughly additive, and in log space it
  would swell as the loss falls and cut the tail into pieces;
* isolated outliers (``metrics.isolated_outliers`` at ``SPIKE_CLEAN_Z``: one or two points beyond both
  neighbouring contexts) are replaced by their neighbours' level, a Hampel-style filter: a spike is
  reported by the spike detector, not as two extra breakpoints around it;
* series longer than ``MAX_SEARCH_POINTS`` are reduced to block medians (10^6 steps -> 2,000 blocks of
  500) and breakpoints map back to the first raw index of their block.

Index convention (one, everywhere): ``Segment.start``/``end`` are half-open ``[start, end)`` indices into
the metric's *finite-value* series, i.e. ``y[np.isfinite(y)]`` after sorting by x. A stretch of
non-finite values becomes its own ``collapsed`` segment with ``start == end`` (the finite index where it
sits) and ``n`` = the number of non-finite points; its statistics are NaN. A series without any finite
value has no segments. Non-finite stretches are hard breaks: the values on either side are segmented
separately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mnv4_postmortem.analyzer.detect import metrics

PENALTY_C = 4.0               # BIC-like: three parameters per added segment, plus one (module docstring)
MIN_SIZE = 3                  # a line through two points has no residual; three is the least that can be judged
MAX_SEARCH_POINTS = 2_000     # longer series are searched on block medians
SEARCH_GRID = 80              # PELT candidate positions before polishing (exact search below this length)
THEIL_SEN_MAX_POINTS = 150    # Theil-Sen is O(n^2): longer segments use block medians for the slope
NOISE_MAX_POINTS = 100_000    # residual noise of longer segments is read on an even subsample
SPIKE_CLEAN_Z = 5.0           # Hampel filter threshold for the search signal
LOG_SEARCH_RANGE = 100.0      # losses spanning more than two decades are searched on log(y)
RESOLUTION_FLOOR = 0.005      # the search's sigma is at least 0.5 % of the series' 5-95 % range

# Labels
COLLAPSED_FRACTION = 0.8      # share of a segment's points within the chance band for "collapsed"
MIN_REL_CHANGE = 0.01         # a trend must move the value by >= 1 % of its level over the segment
OSC_MIN_POINTS = 5
OSC_MIN_FLIPS = 0.5           # share of consecutive differences that change sign (white noise: ~2/3)
OSC_REL_NOISE = 0.2           # noise >= 20 % of the level (a 300-image val set scatters ~10 %) ...
OSC_NOISE_VS_CHANGE = 0.5     # ... and >= half of the net change: the moves dwarf the trend

Label = Literal["improving", "plateau", "degrading", "collapsed", "oscillating"]
Trend = Literal["rising", "falling", "flat"]


@dataclass(frozen=True, slots=True)
class Segment:
    """One regime of one metric.

    metric: series name (``"eval_top1"``, ``"step:train_loss"``).
    unit: ``"epoch"`` (x = epoch index) or ``"step"`` (x = global optimizer-update index).
    start, end: half-open ``[start, end)`` into the finite-value series (module docstring);
        ``start == end`` for a non-finite stretch.
    x_first, x_last: first and last x covered, inclusive.
    n: points covered (finite points; non-finite points for a non-finite stretch).
    level: median value.
    first_value, last_value: the raw values at ``x_first`` and ``x_last``.
    slope, slope_low, slope_high: Theil-Sen slope per x unit and its 95 % confidence interval
        (``metrics.theil_sen``, equal to ``scipy.stats.theilslopes``; NaN bounds for fewer than three points; slope 0.0 for one point).
        Segments of more than ``THEIL_SEN_MAX_POINTS`` points (or from a block-reduced step series) are
        fitted on block medians.
    noise: robust sigma (1.4826 * MAD) of the residuals from the Theil-Sen line (NaN below three points).
    label, first that applies: ``collapsed`` (>= ``COLLAPSED_FRACTION`` of the values within the chance
        band, or a non-finite stretch); ``oscillating`` (>= half of the consecutive moves flip sign, and
        the moves' noise is >= 20 % of the level and >= half the net change); ``improving``/``degrading``
        (``trend`` rising or falling; which is which from ``higher_is_better``); ``plateau``.
    trend: direction-free reading of the slope: ``rising``/``falling`` when significant (CI excludes 0)
        and material (>= ``MIN_REL_CHANGE`` of the level), else ``flat``. Use this for metrics
        without a better direction (lr), where ``label`` treats rising as improving.
    change: the Theil-Sen line's net change over the segment, ``slope * (x_last - x_first)``.
    """

    metric: str
    unit: Literal["epoch", "step"]
    start: int
    end: int
    x_first: float
    x_last: float
    n: int
    level: float
    first_value: float
    last_value: float
    slope: float
    slope_low: float
    slope_high: float
    noise: float
    label: Label
    trend: Trend = "flat"
    change: float = 0.0

    @property
    def epochs(self) -> tuple[float, float]:
        """``(x_first, x_last)``: the span covered, inclusive."""
        return (self.x_first, self.x_last)


class CostLinearTrend:
    """Segment cost, squared error of an ordinary least-squares line per segment, O(1) via prefix sums.
    ruptures' cost interface (``fit``, ``error(start, end)``, ``min_size``, ``model``), so ruptures' searches
    can use it too (the tests and ``bench/bench_detect.py`` compare them).

    ``fit`` takes an ``(n, 2)`` signal of ``[y, x]`` columns (or ``(n,)`` for x = 0..n-1). x and y are
    centred before the sums are taken so that long step series keep their precision.
    """

    model = "linear_trend"
    min_size = MIN_SIZE

    def fit(self, signal: np.ndarray) -> CostLinearTrend:
        signal = np.asarray(signal, dtype=float)
        if signal.ndim == 1:
            y, x = signal, np.arange(signal.size, dtype=float)
        else:
            y, x = signal[:, 0], signal[:, 1]
        y = y - y.mean() if y.size else y
        x = x - x.mean() if x.size else x
        self.signal = signal.reshape(len(y), -1)

        def prefix(values: np.ndarray) -> np.ndarray:
            return np.concatenate(([0.0], np.cumsum(values)))

        self._count = prefix(np.ones_like(y))
        self._sx, self._sy = prefix(x), prefix(y)
        self._sxx, self._sxy, self._syy = prefix(x * x), prefix(x * y), prefix(y * y)
        # Python floats for the scalar path: indexing lists is ~2x faster than numpy scalars.
        self._scalar = tuple(a.tolist() for a in (self._count, self._sx, self._sy, self._sxx, self._sxy, self._syy))
        return self

    def error(self, start: int, end: int) -> float:
        # Scalar arithmetic on purpose: PELT calls this tens of thousands of times per series.
        count, s_x, s_y, s_xx, s_xy, s_yy = self._scalar
        n = count[end] - count[start]
        if n <= 0:
            return 0.0
        sx = s_x[end] - s_x[start]
        sy = s_y[end] - s_y[start]
        var_x = s_xx[end] - s_xx[start] - sx * sx / n
        cov_xy = s_xy[end] - s_xy[start] - sx * sy / n
        var_y = s_yy[end] - s_yy[start] - sy * sy / n
        if var_x <= 0.0:
            return max(var_y, 0.0)
        return max(var_y - cov_xy * cov_xy / var_x, 0.0)

    def errors(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """``error`` for many segments at once (the polishing step scores whole candidate ranges)."""
        n = self._count[ends] - self._count[starts]
        safe_n = np.where(n > 0, n, 1.0)
        sx = self._sx[ends] - self._sx[starts]
        sy = self._sy[ends] - self._sy[starts]
        var_x = self._sxx[ends] - self._sxx[starts] - sx * sx / safe_n
        cov_xy = self._sxy[ends] - self._sxy[starts] - sx * sy / safe_n
        var_y = self._syy[ends] - self._syy[starts] - sy * sy / safe_n
        with np.errstate(divide="ignore", invalid="ignore"):
            residual = np.where(var_x > 0.0, var_y - cov_xy * cov_xy / var_x, var_y)
        return np.where(n > 0, np.maximum(residual, 0.0), 0.0)


def segment_series(
    x: np.ndarray,
    y: np.ndarray,
    metric: str,
    unit: str = "epoch",
    *,
    higher_is_better: bool | None = None,
    chance: float | None = None,
) -> tuple[Segment, ...]:
    """Split one series into regimes and label each (see the module docstring for the method).

    x: epochs (or global update indices); points whose x is not finite are ignored. Input is sorted by x.
    y: values; NaN/inf mean the metric *was* non-finite there (drop merely missing values beforehand).
    higher_is_better: direction; None derives it from the name (losses down, accuracies up; unknown
        names count rising as improving).
    chance: the metric's chance level (``Detection.chance_levels``); None disables ``collapsed`` by level.

    Tiny inputs: no finite point gives ``()`` (non-finite stretches are segments only next to finite
    values); one to three finite points give one segment (no confidence interval below three); an exactly
    constant series gives one plateau.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _segment_series(x, y, metric, unit, higher_is_better, chance)


def _segment_series(
    x: np.ndarray, y: np.ndarray, metric: str, unit: str, higher_is_better: bool | None, chance: float | None,
) -> tuple[Segment, ...]:
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{metric}: x has {x.size} values but y has {y.size}")
    located = np.isfinite(x)
    x, y = x[located], y[located]
    if x.size > 1 and np.any(np.diff(x) < 0):
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]

    direction = metrics.higher_is_better(metric) if higher_is_better is None else higher_is_better
    context = _Context(
        metric=metric,
        unit="step" if unit == "step" else "epoch",
        higher_is_better=True if direction is None else direction,
        chance=chance,
        chance_tol=None if chance is None else metrics.chance_tolerance(metric, chance),
        log_search=metrics.is_loss(metric),
        scale=float(np.median(np.abs(y[np.isfinite(y)]))) if np.isfinite(y).any() else 0.0,
    )
    finite = np.isfinite(y)
    if not finite.any():
        return ()  # nothing to segment; the non-finite detector reports such a series
    finite_before = np.concatenate(([0], np.cumsum(finite)))  # finite points before each position
    segments: list[Segment] = []
    for start, end in _alternating_runs(finite):
        offset = int(finite_before[start])
        if finite[start]:
            segments.extend(_segment_finite(x[start:end], y[start:end], offset, context))
        else:
            segments.append(_nonfinite_segment(x[start:end], y[start:end], offset, context))
    return tuple(segments)


@dataclass(frozen=True, slots=True)
class _Context:
    metric: str
    unit: Literal["epoch", "step"]
    higher_is_better: bool
    chance: float | None
    chance_tol: float | None
    log_search: bool
    scale: float  # median |y| of the finite values: the series' typical magnitude


def _alternating_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive ``[start, end)`` runs where ``mask`` keeps one value, covering the whole array."""
    if mask.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    edges = [0, *cuts.tolist(), mask.size]
    return list(zip(edges[:-1], edges[1:]))


def _segment_finite(x: np.ndarray, y: np.ndarray, offset: int, ctx: _Context) -> list[Segment]:
    """Segments of one all-finite stretch; indices shifted by ``offset``.

    Long stretches are reduced once to block medians (``bx``, ``by``); segment ends are multiples of the
    block, so every segment's blocks are a slice of them and slopes and oscillation are read there.
    """
    block = math.ceil(y.size / MAX_SEARCH_POINTS)
    bx, by = metrics.block_medians(x, block, presorted=True), metrics.block_medians(y, block)
    segments = []
    start = 0
    for end in _breakpoints(bx, by, ctx):
        raw_end = min(end * block, y.size)
        segments.append(_describe(
            x[start * block:raw_end], y[start * block:raw_end], bx[start:end], by[start:end],
            offset + start * block, ctx,
        ))
        start = end
    return segments


def _breakpoints(x: np.ndarray, y: np.ndarray, ctx: _Context) -> list[int]:
    """Segment ends (the last equals ``len(y)``) of the (block-reduced) series."""
    m = y.size
    if m < 2 * MIN_SIZE or np.ptp(y) == 0.0:
        return [m]
    search_y = _hampel(np.log(y) if ctx.log_search and _spans_decades(y) else y)
    sigma = _search_noise(search_y)
    if not 0.0 < sigma < math.inf:
        return [m]
    # In units of sigma the penalty is PENALTY_C * ln(m), and values near 1e154 cannot overflow the
    # cost's sums of squares (a series that still does is left whole).
    standardized = (search_y - float(np.median(search_y))) / sigma
    spacing = float(np.median(np.diff(x))) or 1.0
    positions = (x - x[0]) / spacing
    if not (np.isfinite(np.sum(standardized * standardized)) and np.isfinite(np.sum(positions * positions))):
        return [m]
    signal = np.column_stack([standardized, positions])
    return _pelt_polished(signal, PENALTY_C * math.log(m))


def _search_noise(y: np.ndarray) -> float:
    """``metrics.diff_noise``, but at least ``RESOLUTION_FLOOR`` of the series' 5-95 % range."""
    sigma = metrics.diff_noise(y)
    low, high = np.percentile(y, [5.0, 95.0])
    return max(sigma, RESOLUTION_FLOOR * float(high - low))


def _spans_decades(y: np.ndarray) -> bool:
    """All values positive and max/min above ``LOG_SEARCH_RANGE``."""
    low = float(np.min(y))
    return low > 0.0 and float(np.max(y)) / low > LOG_SEARCH_RANGE


def _hampel(y: np.ndarray) -> np.ndarray:
    """``y`` with isolated outliers (``metrics.isolated_outliers`` at ``SPIKE_CLEAN_Z``) set to their
    neighbours' level, so a spike does not buy two breakpoints around itself."""
    outliers = metrics.isolated_outliers(y, SPIKE_CLEAN_Z)
    if not outliers.mask.any():
        return y
    cleaned = y.copy()
    cleaned[outliers.mask] = outliers.baseline[outliers.mask]
    return cleaned


def _pelt_polished(signal: np.ndarray, penalty: float) -> list[int]:
    """PELT on a coarse candidate grid, then breakpoints moved and merged at full resolution."""
    m = signal.shape[0]
    jump = max(1, math.ceil(m / SEARCH_GRID))
    cost = CostLinearTrend().fit(signal)
    if m < MIN_SIZE:  # no segment of the minimum size fits: one segment
        return [m]
    edges = [0, *_pelt(cost, m, penalty, jump)]
    if jump > 1:
        edges = _polish(cost, edges, jump, penalty)
    return edges[1:]


def _pelt(cost: CostLinearTrend, n: int, penalty: float, jump: int) -> list[int]:
    """PELT (Killick, Fearnhead & Eckley 2012): the segmentation of ``[0, n)`` minimising the sum of segment
    costs plus ``penalty`` per segment, with breakpoints on multiples of ``jump`` and segments of at least
    ``MIN_SIZE`` points; returns the segment ends (the last is ``n``).

    Optimal partitioning, ``best[end] = min over starts s of best[s] + cost(s, end) + penalty``, with PELT's
    pruning: a start whose cost to ``end`` already exceeds ``best[end]`` by more than one penalty can never
    start the last segment of a later optimum (the cost of a least-squares line does not fall when points
    are added), so it leaves the candidate set. The search itself is this loop; ruptures' ``Pelt`` runs the
    same recursion but needs scipy at import (over a second of start-up per process), and copies the whole
    partition per candidate.
    """
    ends = [k for k in range(jump, n, jump) if k >= MIN_SIZE] + [n]
    best: dict[int, float] = {0: 0.0}
    previous: dict[int, int] = {}
    starts: list[int] = []
    for end in ends:
        newest = (end - MIN_SIZE) // jump * jump  # the last start on the grid that leaves MIN_SIZE points
        if not starts or starts[-1] != newest:
            starts.append(newest)
        scored = [(best[s] + cost.error(s, end) + penalty, s) for s in starts if s in best]
        total, start = min(scored, key=lambda pair: pair[0])  # the first of equal totals: the earliest start
        best[end], previous[end] = total, start
        starts = [s for t, s in scored if t <= total + penalty]
    cuts = [n]
    while previous.get(cuts[-1], 0) > 0:
        cuts.append(previous[cuts[-1]])
    return cuts[::-1]


def _polish(cost: CostLinearTrend, edges: list[int], jump: int, penalty: float) -> list[int]:
    """Refine grid breakpoints to single points and drop those that no longer pay their penalty."""
    for _ in range(3):  # converges in one or two passes in practice
        changed = False
        for k in range(1, len(edges) - 1):
            lo, hi = edges[k - 1], edges[k + 1]
            best = _best_split(cost, lo, hi, edges[k] - jump + 1, edges[k] + jump - 1)
            if best is not None:
                changed |= best != edges[k]
                edges[k] = best
        changed |= _merge(cost, edges, penalty)
        changed |= _collapse_short_pairs(cost, edges, jump, penalty)
        if not changed:
            break
    return edges


def _merge(cost: CostLinearTrend, edges: list[int], penalty: float) -> bool:
    """Drop every breakpoint whose two segments cost less joined than apart plus the penalty."""
    changed = False
    k = 1
    while k < len(edges) - 1:
        lo, mid, hi = edges[k - 1], edges[k], edges[k + 1]
        if cost.error(lo, hi) <= cost.error(lo, mid) + cost.error(mid, hi) + penalty:
            del edges[k]
            changed = True
        else:
            k += 1
    return changed


def _collapse_short_pairs(cost: CostLinearTrend, edges: list[int], jump: int, penalty: float) -> bool:
    """Replace two breakpoints closer than two grid steps by one, where that is cheaper.

    A change falling between grid points can come out as a short transition segment whose two ends
    block each other when moved one at a time.
    """
    changed = False
    k = 1
    while k < len(edges) - 2:
        lo, a, b, hi = edges[k - 1], edges[k], edges[k + 1], edges[k + 2]
        if b - a > 2 * jump:
            k += 1
            continue
        current = cost.error(lo, a) + cost.error(a, b) + cost.error(b, hi) + penalty
        best = _best_split(cost, lo, hi, a - jump, b + jump)
        if best is not None and cost.error(lo, best) + cost.error(best, hi) <= current:
            edges[k:k + 2] = [best]
            changed = True
            continue
        k += 1
    return changed


def _best_split(cost: CostLinearTrend, lo: int, hi: int, first: int, last: int) -> int | None:
    """The split point p in [first, last] minimising cost(lo, p) + cost(p, hi), segments >= MIN_SIZE."""
    candidates = np.arange(max(first, lo + MIN_SIZE), min(last, hi - MIN_SIZE) + 1)
    if candidates.size == 0:
        return None
    total = cost.errors(np.full_like(candidates, lo), candidates)
    total += cost.errors(candidates, np.full_like(candidates, hi))
    return int(candidates[int(np.argmin(total))])


def _describe(
    x: np.ndarray, y: np.ndarray, bx: np.ndarray, by: np.ndarray, start: int, ctx: _Context,
) -> Segment:
    """Statistics and label of one finite segment: raw values ``x, y``, their block medians ``bx, by``."""
    n = y.size
    slope, intercept, low, high = _theil_sen(bx, by)
    if n >= 3:
        stride = math.ceil(n / NOISE_MAX_POINTS)  # an even subsample: the MAD of 10^5 points is +-0.5 %
        noise = metrics.robust_sigma(y[::stride] - (intercept + slope * x[::stride]))
    else:
        noise = math.nan
    level = float(np.median(y))
    change = float(slope * (x[-1] - x[0]))
    trend = _trend(n, level, change, low, high)
    label = _label(y, by, level, change, trend, ctx)
    return Segment(
        metric=ctx.metric, unit=ctx.unit, start=start, end=start + n,
        x_first=float(x[0]), x_last=float(x[-1]), n=n, level=level,
        first_value=float(y[0]), last_value=float(y[-1]),
        slope=slope, slope_low=low, slope_high=high, noise=noise,
        label=label, trend=trend, change=change,
    )


def _theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """(slope, intercept, CI low, CI high); block medians above ``THEIL_SEN_MAX_POINTS`` points."""
    n = y.size
    if n == 1 or np.ptp(x) == 0.0:
        return 0.0, float(np.median(y)), math.nan, math.nan
    if n == 2:
        slope = float((y[1] - y[0]) / (x[1] - x[0]))
        return slope, float(y[0] - slope * x[0]), math.nan, math.nan
    if n > THEIL_SEN_MAX_POINTS:
        block = math.ceil(n / THEIL_SEN_MAX_POINTS)
        x, y = metrics.block_medians(x, block), metrics.block_medians(y, block)
    result = metrics.theil_sen(y, x)
    intercept = float(np.median(y - result.slope * x))
    return float(result.slope), intercept, float(result.low_slope), float(result.high_slope)


def _trend(n: int, level: float, change: float, low: float, high: float) -> Trend:
    material = change != 0.0 and abs(change) >= MIN_REL_CHANGE * abs(level)
    significant = n < 3 or low > 0.0 or high < 0.0  # below three points there is no CI: size decides
    if not (material and significant):
        return "flat"
    return "rising" if change > 0 else "falling"


def _label(y: np.ndarray, by: np.ndarray, level: float, change: float, trend: Trend, ctx: _Context) -> Label:
    if ctx.chance is not None and ctx.chance_tol is not None:
        at_chance = np.abs(y - ctx.chance) <= ctx.chance_tol
        if at_chance.mean() >= COLLAPSED_FRACTION:
            return "collapsed"
    if _oscillates(by, max(abs(level), ctx.scale), change):
        return "oscillating"
    if trend == "flat":
        return "plateau"
    return "improving" if (trend == "rising") == ctx.higher_is_better else "degrading"


def _oscillates(by: np.ndarray, scale: float, change: float) -> bool:
    """Frequent sign flips, with noise large against both the value's scale and the net change.

    Judged on the block medians: for a long step series per-batch noise is sampling noise, not an
    oscillation of the training state. ``scale`` is the larger of |level| and the series' median |y|,
    so a loss settling near zero does not oscillate by ratio alone.
    """
    if by.size < OSC_MIN_POINTS:
        return False
    diffs = np.diff(by)
    diffs = diffs[diffs != 0.0]
    if diffs.size < OSC_MIN_POINTS - 1:
        return False
    flips = float(np.mean(np.sign(diffs[1:]) != np.sign(diffs[:-1])))
    if flips < OSC_MIN_FLIPS:
        return False
    # The moves' size from the differences: a MAD of residuals picks one mode of a two-level
    # alternation and reads it as no noise at all.
    noise = metrics.diff_noise(by)
    return noise >= OSC_REL_NOISE * scale and noise >= OSC_NOISE_VS_CHANGE * abs(change)


def _nonfinite_segment(x: np.ndarray, y: np.ndarray, at: int, ctx: _Context) -> Segment:
    """A stretch of NaN/inf values: ``collapsed``, zero-length in finite indices, statistics NaN."""
    same = bool(np.all(y == y[0])) or bool(np.all(np.isnan(y)))
    return Segment(
        metric=ctx.metric, unit=ctx.unit, start=at, end=at,
        x_first=float(x[0]), x_last=float(x[-1]), n=int(y.size),
        level=float(y[0]) if same else math.nan,
        first_value=float(y[0]), last_value=float(y[-1]),
        slope=math.nan, slope_low=math.nan, slope_high=math.nan, noise=math.nan,
        label="collapsed", trend="flat", change=math.nan,
    )
