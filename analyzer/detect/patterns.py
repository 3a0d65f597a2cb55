"""Pattern detectors: each returns frozen facts with the epochs they cover and the values that prove them.

Detectors state what the numbers show; whether a fact matters (a two-epoch stall in a healthy run with a
300-image validation set, say) is for the rules. Thresholds are module constants, fixed for every run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

import numpy as np

from mnv4_postmortem.analyzer.detect import metrics
from mnv4_postmortem.analyzer.detect.segments import Segment
from mnv4_postmortem.analyzer.detect.series import MetricSeries

# Exact stall: consecutive values equal within STALL_REL_TOL * max(1, |v|). timm averages float32 per-batch
# accuracies, so the same number of correct images prints as 47.0 in one epoch and 47.00000010172526
# in another (2e-9 relative, seen in fixtures/runs/v06_*): 1e-9 would split those. 1e-7 is float32's
# resolution and still far below one image (100/N_val >= 1e-3 points for any N_val <= 10^5).
STALL_REL_TOL = 1e-7
STALL_MIN_LENGTH = 2

# Spikes: isolated points beyond both neighbouring contexts (``metrics.isolated_outliers``), in the bad
# direction (losses up, accuracies down). Both statistically far (>= SPIKE_Z x the series' MAD-based
# difference noise; losses read in log space, where a 3x jump weighs the same at 6.9 and at 0.5) and
# materially far (the SPIKE_MIN_* constants).
SPIKE_Z = 6.0
SPIKE_MAX_RUN = 2                # at most two points in a row; longer is a regime, not a spike
SPIKE_MIN_LOSS_RATIO = 1.5       # loss >= 1.5x its local level
SPIKE_MIN_ACC_DROP = 2.0         # accuracy >= 2 points ...
SPIKE_MIN_ACC_REL_DROP = 0.1     # ... and >= 10 % below its local level
MAX_SPIKES_PER_METRIC = 20       # the largest by z; step series of noisy runs could list thousands

# Explosion: a loss far above where it started, and staying there. Reference = the lowest of the first
# EXPLOSION_REF_POINTS values (a loss may start high and fall; the best early value is where it "is").
# Far above = after the reference, >= EXPLOSION_RATIO x the reference; anywhere, >= EXPLOSION_LNC_FACTOR
# x ln C when C is known (a fresh classifier starts near ln C; 20x that is saturated logits, whatever the
# first value was). Staying = at least EXPLOSION_MIN_POINTS points in a row, or through the end; NaN after
# the reference counts as above, but an excursion needs at least one finite value above the bar.
EXPLOSION_RATIO = 3.0
EXPLOSION_LNC_FACTOR = 20.0
EXPLOSION_REF_POINTS = 3
EXPLOSION_MIN_POINTS = 2
EXPLOSION_STEP_BLOCKS = 2_000    # step series are judged on at most this many block medians

# EMA gap: the EMA's top-1 is "far below" the model's when model - ema > max(5 points, 3x the model's
# epoch-to-epoch noise), so a noisy small validation set does not make every epoch a gap.
EMA_GAP_MIN_POINTS = 5.0
EMA_GAP_NOISE_MULT = 3.0


@dataclass(frozen=True, slots=True)
class ExactStall:
    """A maximal run of identical values (``STALL_REL_TOL``) over >= 2 consecutive reported epochs."""

    metric: str
    first_epoch: int
    last_epoch: int          # inclusive
    length: int              # epochs in the run
    value: float             # the repeated value (the run's first)


@dataclass(frozen=True, slots=True)
class ChanceLevel:
    """A maximal run of consecutive epochs where ``metric`` sits at chance for ``num_classes`` classes."""

    metric: str
    first_epoch: int
    last_epoch: int          # inclusive
    length: int
    chance: float            # 100/C (top-1), min(100, 500/C) (top-5) or ln C (loss)
    tolerance: float         # half-width of the band (``metrics.chance_tolerance``)
    num_classes: int
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class NonFinite:
    """The first NaN/inf of a metric."""

    metric: str
    unit: Literal["epoch", "step"]
    epoch: int | None        # the epoch of the first non-finite value
    update: int | None       # its global update index (step series only)
    value: float             # nan, inf or -inf
    lr: float | None         # the LR at that epoch (step series: of that step) when known
    count: int               # non-finite values of this metric in total
    last_finite_epoch: int | None  # the last epoch before it with a finite value


@dataclass(frozen=True, slots=True)
class Spike:
    """An isolated point far from the local robust level in the bad direction."""

    metric: str
    unit: Literal["epoch", "step"]
    epoch: int | None        # None only for a step row without an epoch
    update: int | None       # global update index (step series only)
    value: float
    baseline: float          # the level its neighbours agree on (mean of the medians before and after)
    z: float                 # robust z-score (log space for positive losses), absolute


@dataclass(frozen=True, slots=True)
class Explosion:
    """A loss far above its reference that stays there (or turns non-finite)."""

    metric: str
    unit: Literal["epoch", "step"]
    epoch: int               # first epoch of the excursion
    update: int | None       # its global update index (step series only)
    last_epoch: int          # last epoch still above (inclusive)
    reaches_end: bool        # True when the excursion lasts to the end of the series
    value: float             # the value at ``epoch``
    peak: float              # the largest finite value of the excursion
    reference: float         # the lowest of the first values
    threshold: float         # the bar it crossed


@dataclass(frozen=True, slots=True)
class GeneralizationGap:
    """Eval loss rising (slope CI above 0) while train loss falls (slope CI below 0) over the same epochs.

    Read off the segments' fitted lines, not single points: one noisy low epoch must not make a rise
    (a flat plateau's lowest point sits ~2 sigma under its level). ``noise`` is the larger residual sigma of
    the two segments compared, so a rule can ask for a rise of several sigma.
    """

    metric: str              # the eval-loss column read
    start_epoch: int
    end_epoch: int
    eval_loss_min: float     # lowest fitted eval loss up to the rise (an end of one segment's Theil-Sen line) ...
    eval_loss_min_epoch: int  # ... and the epoch of that end
    eval_loss_end: float     # the rising segment's fitted value at its last epoch
    rise: float              # eval_loss_end - eval_loss_min
    eval_slope: float        # per epoch, with the CI lower bound (> 0)
    eval_slope_low: float
    train_slope: float       # per epoch, with the CI upper bound (< 0)
    train_slope_high: float
    noise: float = math.nan  # robust residual sigma of the baseline and the rising segment (the larger)


@dataclass(frozen=True, slots=True)
class EmaGap:
    """Model vs EMA top-1 where both passes were logged (``eval_top1_model``, ``eval_top1_ema``)."""

    epochs: tuple[int, ...]  # epochs with both values
    gaps: tuple[float, ...]  # model - ema, per epoch (points)
    threshold: float         # max(EMA_GAP_MIN_POINTS, EMA_GAP_NOISE_MULT * noise)
    noise: float             # robust epoch-to-epoch noise of the model's top-1
    far_epochs: tuple[int, ...]  # epochs where the gap exceeds the threshold
    max_gap: float
    max_gap_epoch: int
    final_gap: float


@dataclass(frozen=True, slots=True)
class Incomplete:
    """The run stopped before its schedule ended."""

    last_epoch: int
    epochs_done: int         # last_epoch + 1
    epochs_scheduled: int
    missing: int
    basis: str               # where epochs_scheduled came from


# ----------------------------------------------------------------------------------------------------------
# Exact stalls and chance level


def find_exact_stalls(series: Mapping[str, MetricSeries]) -> tuple[ExactStall, ...]:
    """Runs of identical consecutive values in every epoch metric except learning rates."""
    found: list[ExactStall] = []
    for name, s in series.items():
        if s.unit != "epoch" or metrics.is_learning_rate(name) or len(s) < STALL_MIN_LENGTH:
            continue
        y = s.y
        with np.errstate(invalid="ignore"):
            same = np.abs(np.diff(y)) <= STALL_REL_TOL * np.maximum(1.0, np.abs(y[:-1]))
        for start, end in metrics.runs_of(same):
            length = end - start + 1
            if length >= STALL_MIN_LENGTH:
                found.append(ExactStall(
                    metric=name, first_epoch=int(s.epoch[start]), last_epoch=int(s.epoch[end]),
                    length=length, value=float(y[start]),
                ))
    return tuple(found)


def find_chance_levels(
    series: Mapping[str, MetricSeries], levels: Mapping[str, float], num_classes: int | None,
) -> tuple[ChanceLevel, ...]:
    """Epoch ranges where a loss sits at ln C or a top-k accuracy at chance (``levels``: the run's chance
    levels, ``metrics.chance_levels``)."""
    classes = metrics.valid_num_classes(num_classes)
    if classes is None:
        return ()
    found: list[ChanceLevel] = []
    for name, s in series.items():
        chance = levels.get(name)
        if s.unit != "epoch" or chance is None:
            continue
        tolerance = metrics.chance_tolerance(name, chance)
        with np.errstate(invalid="ignore"):
            at_chance = np.abs(s.y - chance) <= tolerance
        for start, end in metrics.runs_of(at_chance):
            found.append(ChanceLevel(
                metric=name, first_epoch=int(s.epoch[start]), last_epoch=int(s.epoch[end - 1]),
                length=end - start, chance=chance, tolerance=tolerance, num_classes=classes,
                values=tuple(float(v) for v in s.y[start:end]),
            ))
    return tuple(found)


# ----------------------------------------------------------------------------------------------------------
# Non-finite values, spikes, explosions


def find_nonfinite(
    series: Mapping[str, MetricSeries], lr_of_epoch: Mapping[int, float],
    step_lr: MetricSeries | None = None,
) -> tuple[NonFinite, ...]:
    """The first NaN/inf of every series, with the LR in force there when known."""
    found: list[NonFinite] = []
    for name, s in series.items():
        bad = ~np.isfinite(s.y)
        if not bad.any():
            continue
        first = int(np.argmax(bad))
        epoch = _as_int(s.epoch[first])
        finite_before = np.flatnonzero(~bad[:first])
        lr = lr_of_epoch.get(epoch) if epoch is not None else None
        update = None
        if s.unit == "step":
            update = _as_int(s.x[first])
            lr = _step_value_at(step_lr, s.x[first]) if step_lr is not None else lr
        found.append(NonFinite(
            metric=name, unit=s.unit, epoch=epoch, update=update, value=float(s.y[first]),
            lr=lr, count=int(bad.sum()),
            last_finite_epoch=_as_int(s.epoch[finite_before[-1]]) if finite_before.size else None,
        ))
    return tuple(found)


def _step_value_at(s: MetricSeries, x: float) -> float | None:
    """The finite value of a step series at update ``x`` (the last one logged at or before it)."""
    finite = np.isfinite(s.y)
    xs, ys = s.x[finite], s.y[finite]
    position = int(np.searchsorted(xs, x, side="right")) - 1
    return float(ys[position]) if position >= 0 else None


def find_spikes(series: Mapping[str, MetricSeries]) -> tuple[Spike, ...]:
    """Isolated bad-direction outliers in every loss and accuracy series (see the SPIKE_* constants)."""
    found: list[Spike] = []
    for name, s in series.items():
        direction = metrics.higher_is_better(name)
        if direction is None:
            continue
        finite = np.isfinite(s.y)
        if finite.sum() < 3:  # a spike needs a neighbour on each side
            continue
        found.extend(_spikes_in(name, s, finite, higher_is_better=direction))
    return tuple(found)


def _spikes_in(name: str, s: MetricSeries, finite: np.ndarray, *, higher_is_better: bool) -> list[Spike]:
    y, x, epoch = s.y[finite], s.x[finite], s.epoch[finite]
    log_scale = not higher_is_better and bool(np.all(y > 0))
    outliers = metrics.isolated_outliers(np.log(y) if log_scale else y, SPIKE_Z, max_run=SPIKE_MAX_RUN)
    bad_way = outliers.z < 0 if higher_is_better else outliers.z > 0
    baseline = np.exp(outliers.baseline) if log_scale else outliers.baseline
    spikes = []
    for i in np.flatnonzero(outliers.mask & bad_way):
        if not _material_spike(float(y[i]), float(baseline[i]), higher_is_better):
            continue
        spikes.append(Spike(
            metric=name, unit=s.unit, epoch=_as_int(epoch[i]),
            update=int(x[i]) if s.unit == "step" else None,
            value=float(y[i]), baseline=float(baseline[i]), z=float(abs(outliers.z[i])),
        ))
    spikes.sort(key=lambda spike: -spike.z)
    return sorted(spikes[:MAX_SPIKES_PER_METRIC], key=lambda spike: (spike.epoch or 0, spike.update or 0))


def _material_spike(value: float, baseline: float, higher_is_better: bool) -> bool:
    if higher_is_better:
        drop = baseline - value
        return drop >= SPIKE_MIN_ACC_DROP and drop >= SPIKE_MIN_ACC_REL_DROP * abs(baseline)
    return baseline > 0 and value >= SPIKE_MIN_LOSS_RATIO * baseline


def find_explosions(series: Mapping[str, MetricSeries], num_classes: int | None) -> tuple[Explosion, ...]:
    """Every sustained excursion of a loss far above its reference (see the EXPLOSION_* constants)."""
    classes = metrics.valid_num_classes(num_classes)
    absolute_bar = EXPLOSION_LNC_FACTOR * math.log(classes) if classes else math.inf
    found: list[Explosion] = []
    for name, s in series.items():
        if not metrics.is_loss(name) or not np.isfinite(s.y).any():
            continue
        found.extend(_explosions_in(name, s, absolute_bar))
    return tuple(found)


def _explosions_in(name: str, s: MetricSeries, absolute_bar: float) -> list[Explosion]:
    x, y, epoch = s.x, s.y, s.epoch
    if s.unit == "step" and y.size > EXPLOSION_STEP_BLOCKS:
        block = math.ceil(y.size / EXPLOSION_STEP_BLOCKS)
        starts = np.arange(0, y.size, block)
        # A block with a NaN has a NaN median: a block that went non-finite counts as above the bar.
        x, epoch, y = x[starts], epoch[starts], metrics.block_medians(y, block)
    finite = np.isfinite(y)
    first_values = y[finite][:EXPLOSION_REF_POINTS]
    reference = float(np.min(first_values))
    bar = min(EXPLOSION_RATIO * reference, absolute_bar) if reference > 0 else absolute_bar
    # Only what comes after the reference point can explode: a loss that starts high and falls fast
    # (BCE, or a first epoch averaging the untrained model) is not an excursion above its own start.
    # The absolute bar (20 ln C) still applies from the first epoch: no untrained classifier starts there,
    # so a first value of 1.7e25 (fixtures/runs/v1_nan) is an explosion, not a high start.
    reference_index = int(np.flatnonzero(finite)[int(np.argmin(first_values))])
    after_reference = np.arange(y.size) > reference_index
    with np.errstate(invalid="ignore"):
        above = (after_reference & (~finite | (y >= bar))) | (y >= absolute_bar)
    found = []
    for start, end in metrics.runs_of(above):
        reaches_end = end == y.size
        if end - start < EXPLOSION_MIN_POINTS and not reaches_end:
            continue
        excursion = y[start:end]
        excursion_finite = excursion[np.isfinite(excursion)]
        if not excursion_finite.size:
            continue  # NaN alone is a NonFinite, not an explosion
        found.append(Explosion(
            metric=name, unit=s.unit, epoch=_as_int(epoch[start]) or 0,
            update=_as_int(x[start]) if s.unit == "step" else None,
            last_epoch=_as_int(epoch[end - 1]) or 0, reaches_end=reaches_end,
            value=float(y[start]),
            peak=float(excursion_finite.max()),
            reference=reference, threshold=float(bar),
        ))
    return found


# ----------------------------------------------------------------------------------------------------------
# Generalization gap, EMA gap, incomplete run


def find_generalization_gap(
    segments: Mapping[str, tuple[Segment, ...]], series: Mapping[str, MetricSeries],
) -> GeneralizationGap | None:
    """The largest eval-loss rise over a stretch where train loss falls (both by their slope CIs)."""
    eval_name = next((n for n in ("eval_loss", "eval_loss_model") if n in segments and n in series), None)
    train = series.get("train_loss")
    if eval_name is None or train is None:
        return None
    best: GeneralizationGap | None = None
    for segment in segments[eval_name]:
        # "degrading" and not "collapsed": a rise at chance level (an EMA that has not caught up) is no gap
        if segment.label != "degrading" or segment.n < 3 or not segment.slope_low > 0:
            continue
        train_fit = _slope_between(train, segment.x_first, segment.x_last)
        if train_fit is None or not train_fit[2] < 0:
            continue
        gap = _gap_from(eval_name, segments[eval_name], segment, train_fit)
        if gap is not None and (best is None or gap.rise > best.rise):
            best = gap
    return best


def _slope_between(s: MetricSeries, first: float, last: float) -> tuple[float, float, float] | None:
    """Theil-Sen (slope, low, high) of the finite values with first <= x <= last; None below 3 points."""
    inside = (s.x >= first) & (s.x <= last) & np.isfinite(s.y)
    if inside.sum() < 3 or np.ptp(s.x[inside]) == 0:
        return None
    result = metrics.theil_sen(s.y[inside], s.x[inside])
    return float(result.slope), float(result.low_slope), float(result.high_slope)


def _line_at(segment: Segment, x: float) -> float:
    """The segment's Theil-Sen line at x (through its median at the middle of its span)."""
    middle = (float(segment.x_first) + float(segment.x_last)) / 2.0
    return float(segment.level) + float(segment.slope) * (x - middle)


def _gap_from(
    name: str, segments: Sequence[Segment], rising: Segment, train_fit: tuple[float, float, float],
) -> GeneralizationGap | None:
    """Rise of ``rising`` above the lowest fitted eval loss of the segments up to it (segments, not extrema)."""
    before = [s for s in segments if s.x_last <= rising.x_last and s.n >= 1 and math.isfinite(s.level)]
    if not before:
        return None
    ends = [(_line_at(s, float(x)), int(x), s) for s in before for x in (s.x_first, s.x_last)]
    baseline, baseline_epoch, baseline_segment = min(ends, key=lambda item: item[0])
    end_value = _line_at(rising, float(rising.x_last))
    rise = end_value - baseline
    if rise <= 0:
        return None
    noises = [float(s.noise) for s in (baseline_segment, rising) if math.isfinite(s.noise)]
    return GeneralizationGap(
        metric=name, start_epoch=int(rising.x_first), end_epoch=int(rising.x_last),
        eval_loss_min=baseline, eval_loss_min_epoch=baseline_epoch,
        eval_loss_end=end_value, rise=rise, eval_slope=rising.slope, eval_slope_low=rising.slope_low,
        train_slope=train_fit[0], train_slope_high=train_fit[2], noise=max(noises) if noises else math.nan,
    )


def find_ema_gap(series: Mapping[str, MetricSeries]) -> EmaGap | None:
    """Per-epoch model - EMA top-1 and the epochs where the EMA is far below (EMA_GAP_* constants)."""
    model, ema = series.get("eval_top1_model"), series.get("eval_top1_ema")
    if model is None or ema is None:
        return None
    model_values = dict(zip(model.epoch.astype(int).tolist(), model.y.tolist()))
    pairs = [
        (epoch, model_values[epoch] - value)
        for epoch, value in zip(ema.epoch.astype(int).tolist(), ema.y.tolist())
        if epoch in model_values and math.isfinite(value) and math.isfinite(model_values[epoch])
    ]
    if not pairs:
        return None
    epochs = tuple(e for e, _ in pairs)
    gaps = tuple(float(g) for _, g in pairs)
    noise = metrics.diff_noise(model.y[np.isfinite(model.y)])
    threshold = max(EMA_GAP_MIN_POINTS, EMA_GAP_NOISE_MULT * noise)
    worst = int(np.argmax(gaps))
    return EmaGap(
        epochs=epochs, gaps=gaps, threshold=threshold, noise=noise,
        far_epochs=tuple(e for e, g in pairs if g > threshold),
        max_gap=gaps[worst], max_gap_epoch=epochs[worst], final_gap=gaps[-1],
    )


def find_incomplete(last_epoch: int | None, scheduled: int | None, basis: str) -> Incomplete | None:
    """An ``Incomplete`` when ``last_epoch + 1 < scheduled``."""
    if last_epoch is None or scheduled is None or last_epoch + 1 >= scheduled:
        return None
    return Incomplete(
        last_epoch=last_epoch, epochs_done=last_epoch + 1, epochs_scheduled=scheduled,
        missing=scheduled - last_epoch - 1, basis=basis,
    )


def _as_int(value: float) -> int | None:
    return int(value) if value is not None and math.isfinite(value) else None
