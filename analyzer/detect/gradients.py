"""Gradient-norm detectors: exploding, vanishing, and a layer group that receives far less gradient.

They read ``Run.step_scalars`` (per-step TensorBoard tags; else the step frame): its ``grad_norm`` column (the global L2 norm of all gradients, one value per logged
optimizer step) and its ``grad_norm/<group>`` columns (the L2 norm over one layer group: stem, the stages,
head), wherever they came from: the built-in trainer writes them to TensorBoard, and other scripts' tags
are mapped onto these names by the alias table (``ingest/tensorboard.py``). Epoch-level columns of the same
names are read when there is no step column (a script that logs the norm once per epoch).

Thresholds are fixed for every run; each states the principle it comes from:

- Exploding (``GRAD_EXPLOSION_GROWTH``): the norm's typical level (block medians of ~5% of the points, so
  single spiky steps do not count) sits at least one order of magnitude above where it started (the lowest
  of its first 3 values, the loss-explosion detector's reference) for two blocks in a row or through the
  end. A healthy run's norm changes by a small factor as the loss falls; a factor of 10 is what "explodes"
  means in the gradient-clipping literature (clip thresholds sit at a few times the typical norm). The
  growth per step is reported as a robust slope: Theil-Sen on log10(norm) from the start to the peak,
  with its 95% CI. A norm that turns non-finite after finite values exploded by definition.
- Vanishing (``GRAD_VANISHING_NORM``): below 1e-7. Float32 has a relative resolution of ~1.2e-7, so for
  weights of order 1 and an LR <= 1 an SGD update of that size rounds away; the norm is over *all*
  gradients, so every single one is smaller still. It must hold for ``GRAD_VANISHING_MIN_POINTS``
  consecutive logged steps (one quiet batch is not a dead network).
- A weak group (``GRAD_GROUP_GAP_DECADES``): a group's median norm at least 3 orders of magnitude below the
  median over groups. Norms scale with the square root of a group's parameter count, and a network's
  groups differ in size by at most ~100x (10x in norm); 1000x is beyond what size explains: the group is
  frozen, dead (ReLUs that never fire) or cut off from the loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.model import Run
from mnv4_postmortem.analyzer.detect import metrics

GRAD_NORM = "grad_norm"
GROUP_PREFIX = "grad_norm/"

GRAD_EXPLOSION_GROWTH = 10.0
GRAD_VANISHING_NORM = 1e-7
GRAD_VANISHING_MIN_POINTS = 3
GRAD_GROUP_GAP_DECADES = 3.0
EXPLOSION_REF_POINTS = 3       # the reference is the lowest of the first 3 norms, as for losses (patterns.py)
EXPLOSION_MIN_BLOCKS = 2       # staying: two block medians in a row above the bar, or through the end
MIN_POINTS = 8                 # fewer logged steps than this say nothing about a trend
BLOCKS = 20                    # block medians over ~5% of the points each
MAX_SLOPE_POINTS = 400         # Theil-Sen is O(n^2): thin longer series evenly


@dataclass(frozen=True, slots=True)
class GradSeries:
    """One gradient-norm series: ``x`` global optimizer-update index (or epoch), ``y`` the norm."""

    metric: str
    unit: str                  # "step" or "epoch"
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True, slots=True)
class GradExplosion:
    metric: str
    unit: str
    first_step: int            # where the rise starts (first point)
    peak_step: int             # the block whose median is highest, or the first non-finite point
    reference: float           # median norm of the first block
    peak: float                # highest block median (inf when the norm overflowed)
    growth: float              # peak / reference
    growth_per_step: float     # 10 ** (Theil-Sen slope of log10 norm), start to peak
    growth_per_step_low: float # its 95% CI
    growth_per_step_high: float
    nonfinite_step: int | None  # first non-finite norm after finite ones


@dataclass(frozen=True, slots=True)
class GradVanishing:
    metric: str
    unit: str
    first_step: int            # first point of the longest run under the bar
    last_step: int
    points: int                # points in that run
    fraction: float            # share of all finite points under the bar
    value: float               # the smallest norm in the run
    threshold: float


@dataclass(frozen=True, slots=True)
class WeakGroup:
    group: str                 # e.g. "stem", "stage2", "head"
    median: float              # its median norm over the run
    reference: float           # the median of the groups' medians
    decades_below: float       # log10(reference / median); inf for a group whose gradient is all zero


@dataclass(frozen=True, slots=True)
class GradientFacts:
    """What the gradient norms show. ``groups``: each group's median norm, in column order."""

    metrics: tuple[str, ...]
    points: int                # logged points of the global norm (or the largest group)
    global_median: float | None
    groups: tuple[tuple[str, float], ...]
    explosion: GradExplosion | None
    vanishing: tuple[GradVanishing, ...]   # global first, then groups
    weak_groups: tuple[WeakGroup, ...]     # weakest first


def gradient_series(run: Run) -> dict[str, GradSeries]:
    """``grad_norm`` and ``grad_norm/<group>`` from the per-step scalars (TensorBoard), else the step frame,
    else the epoch frame."""
    out = _from_frame(getattr(run, "step_scalars", None), "step")
    if not out:
        out = _from_frame(run.steps, "step")
    if not out:
        out = _from_frame(run.epochs, "epoch")
    return out


def _from_frame(frame: pd.DataFrame | None, unit: str) -> dict[str, GradSeries]:
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        return {}
    columns = [str(c) for c in frame.columns if str(c) == GRAD_NORM or str(c).startswith(GROUP_PREFIX)]
    if not columns:
        return {}
    x = _positions(frame, unit)
    out = {}
    for column in columns:
        y = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        keep = np.isfinite(x) & ~np.isnan(y)  # NaN is a missing point here; +-inf is an overflowed norm
        if keep.sum() == 0:
            continue
        xs, ys = x[keep], y[keep]
        order = np.argsort(xs, kind="stable")
        out[column] = GradSeries(column, unit, xs[order], ys[order])
    return out


def _positions(frame: pd.DataFrame, unit: str) -> np.ndarray:
    if unit == "epoch":
        return pd.to_numeric(pd.Series(frame.index), errors="coerce").to_numpy(dtype=float)
    if "update" in frame.columns:
        update = pd.to_numeric(frame["update"], errors="coerce").to_numpy(dtype=float)
        if np.isfinite(update).any():
            return update
    if "step" in frame.columns:
        return pd.to_numeric(frame["step"], errors="coerce").to_numpy(dtype=float)
    index = pd.to_numeric(pd.Series(frame.index), errors="coerce").to_numpy(dtype=float)
    return index if np.isfinite(index).all() else np.arange(len(frame), dtype=float)


def find_gradient_facts(series: dict[str, GradSeries]) -> GradientFacts | None:
    if not series:
        return None
    total = series.get(GRAD_NORM)
    groups = {name[len(GROUP_PREFIX):]: s for name, s in series.items() if name.startswith(GROUP_PREFIX)}
    medians = tuple((name, _median(s.y)) for name, s in groups.items())
    vanishing = [v for v in (find_vanishing(s) for s in series.values()) if v is not None]
    vanishing.sort(key=lambda v: v.metric != GRAD_NORM)
    return GradientFacts(
        metrics=tuple(series),
        points=max(len(s.y) for s in series.values()),
        global_median=_median(total.y) if total is not None else None,
        groups=medians,
        explosion=find_explosion(total) if total is not None else _first(find_explosion(s) for s in groups.values()),
        vanishing=tuple(vanishing),
        weak_groups=find_weak_groups(dict(medians)),
    )


def find_explosion(s: GradSeries) -> GradExplosion | None:
    """The norm's typical level far above where it started, and staying there (or an overflow)."""
    finite = np.isfinite(s.y)
    if finite.sum() < MIN_POINTS:
        return None
    first_finite = int(np.flatnonzero(finite)[0])
    bad_after = np.flatnonzero(~finite[first_finite:])
    nonfinite_step = int(s.x[first_finite + bad_after[0]]) if bad_after.size else None
    x, y = s.x[finite], s.y[finite]
    positive = y > 0
    x, logs = x[positive], np.log10(y[positive])
    if logs.size < MIN_POINTS:
        return None
    reference = float(logs[:EXPLOSION_REF_POINTS].min())
    block = max(3, logs.size // BLOCKS)
    levels = metrics.block_medians(logs, block)
    above = levels >= reference + math.log10(GRAD_EXPLOSION_GROWTH)
    runs = metrics.runs_of(above)
    sustained = [r for r in runs if r[1] - r[0] >= EXPLOSION_MIN_BLOCKS or r[1] == levels.size]
    if not sustained and nonfinite_step is None:
        return None
    peak_block = int(np.argmax(levels))
    peak = float(levels[peak_block])
    end = min(logs.size, (peak_block + 1) * block)
    slope = _log_slope(x[:end], logs[:end]) or (math.nan, math.nan, math.nan)
    rising = bool(sustained)
    peak_at = int(x[min(x.size - 1, peak_block * block + block // 2)]) if rising else nonfinite_step
    return GradExplosion(
        metric=s.metric, unit=s.unit, first_step=int(x[0]), peak_step=int(peak_at),
        reference=10 ** reference, peak=(10 ** peak) if rising else math.inf,
        growth=10 ** (peak - reference) if rising else math.inf,
        growth_per_step=10 ** slope[0], growth_per_step_low=10 ** slope[1], growth_per_step_high=10 ** slope[2],
        nonfinite_step=nonfinite_step,
    )


def _log_slope(x: np.ndarray, logs: np.ndarray) -> tuple[float, float, float] | None:
    if x.size < 3:
        return None
    if x.size > MAX_SLOPE_POINTS:
        pick = np.linspace(0, x.size - 1, MAX_SLOPE_POINTS).round().astype(int)
        x, logs = x[pick], logs[pick]
    fit = metrics.theil_sen(logs, x)
    if not math.isfinite(fit.slope) or not math.isfinite(fit.low_slope):
        return None
    return fit.slope, fit.low_slope, fit.high_slope


def find_vanishing(s: GradSeries) -> GradVanishing | None:
    """The longest run of consecutive finite points under ``GRAD_VANISHING_NORM``, when long enough."""
    finite = np.isfinite(s.y)
    y, x = s.y[finite], s.x[finite]
    if y.size == 0:
        return None
    under = y < GRAD_VANISHING_NORM
    runs = metrics.runs_of(under)
    if not runs:
        return None
    start, end = max(runs, key=lambda r: r[1] - r[0])
    if end - start < GRAD_VANISHING_MIN_POINTS:
        return None
    return GradVanishing(
        metric=s.metric, unit=s.unit, first_step=int(x[start]), last_step=int(x[end - 1]), points=end - start,
        fraction=float(under.mean()), value=float(y[start:end].min()), threshold=GRAD_VANISHING_NORM,
    )


def find_weak_groups(medians: dict[str, float]) -> tuple[WeakGroup, ...]:
    """Groups whose median norm is >= ``GRAD_GROUP_GAP_DECADES`` orders of magnitude below the groups' median."""
    known = {name: m for name, m in medians.items() if m is not None and math.isfinite(m)}
    if len(known) < 3:  # with two groups "the others" is one group; the median says nothing
        return ()
    reference = float(np.median(list(known.values())))
    if reference <= 0:
        return ()
    weak = []
    for name, m in known.items():
        decades = math.inf if m <= 0 else math.log10(reference / m)
        if decades >= GRAD_GROUP_GAP_DECADES:
            weak.append(WeakGroup(name, m, reference, decades))
    return tuple(sorted(weak, key=lambda w: -w.decades_below))


def _median(y: np.ndarray) -> float | None:
    finite = y[np.isfinite(y)]
    return float(np.median(finite)) if finite.size else None


def _first(items):
    return next((item for item in items if item is not None), None)
