"""Learning-rate schedule as it happened, compared with the schedule the config asked for.

Read from the epoch ``lr`` column (timm >= 0.8: the LR used during that epoch, or the last per-update LR
for ``--sched-on-updates``), else from the LRs of the ``Train:`` step lines (x = epoch + idx/per_epoch).

* warm-up: epochs from the first LR seen to the first point within ``PEAK_REL_TOL`` of the maximum. timm
  ramps for ``warmup_epochs`` epochs and reaches the peak at epoch ``warmup_epochs``, so a run with
  ``warmup_epochs: 5`` peaks at epoch 5;
* decay shape, judged on one LR per epoch after the peak, scaled by the peak: ``constant`` (all within
  1 %), ``step`` (rare jumps, each a drop >= 5 %), else the best least-squares fit among ``linear``,
  ``exponential`` and ``cosine`` (a half cosine from the run's first epoch (timm without
  ``warmup_prefix``) or from the peak, over a grid of lengths, ending on a floor as timm's cool-down
  does); ``unknown`` when even the best leaves an RMS error above ``SHAPE_MAX_ERROR``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.model import TrainConfig
from mnv4_postmortem.analyzer.detect.series import MetricSeries
from mnv4_postmortem.analyzer.timm.schedule import cosine_lr

PEAK_REL_TOL = 1e-6          # float noise when finding the first point at the peak
CONSTANT_TOL = 0.01          # every post-peak LR within 1 % of the peak
STEP_CHANGE_TOL = 1e-3       # a relative change between consecutive epochs smaller than this is "no change"
STEP_MIN_DROP = 0.05         # every change of a step schedule is a drop of >= 5 % ...
STEP_MAX_CHANGE_SHARE = 0.25  # ... and at most a quarter of the epoch transitions change at all
SHAPE_MAX_ERROR = 0.05       # RMS error (fraction of the peak) above which the shape is "unknown"
SHAPE_TIE = 1e-3             # fits this close count as equally good; then the config's sched wins
WARMUP_TOL = 0.5             # epochs; 1.0 with --sched-on-updates (the epoch column shows an update's LR)
PEAK_TOL = 0.05              # peak LR within 5 % of the LR the config implies
SHAPE_MIN_POINTS = 4         # post-peak epochs needed before a shape is compared with the config

Shape = Literal["cosine", "step", "linear", "exponential", "constant", "unknown"]
_SCHED_SHAPES = {"cosine": "cosine", "step": "step", "multistep": "step"}


@dataclass(frozen=True, slots=True)
class Schedule:
    """The LR schedule as logged.

    source: ``"epoch"`` (the epoch ``lr`` column) or ``"step"`` (LRs of the step lines).
    epochs, lrs: the per-epoch LR curve the shape was judged on (step source: median LR per epoch).
    initial_lr: the first LR seen (at ``epochs[0]``).
    warmup_epochs: epochs from the first LR to the peak (0.0: no warm-up); fractional for step source.
    peak_lr, peak_epoch: the maximum and where it is first reached.
    final_lr, final_epoch: the last LR seen.
    shape: decay after the peak (module docstring); shape_error: its RMS error as a fraction of the peak.
    config_sched, config_warmup_epochs, config_lr: what the config asked for (None when absent).
    expected_peak_lr: the peak those imply (timm's cosine without ``warmup_prefix`` peaks at
        ``cos``-scaled lr at epoch ``warmup_epochs``); None when unknown or not comparable (layer decay).
    mismatches: human-readable differences between the log and the config; empty when they agree.
    """

    source: Literal["epoch", "step"]
    epochs: tuple[float, ...]
    lrs: tuple[float, ...]
    initial_lr: float
    warmup_epochs: float
    peak_lr: float
    peak_epoch: float
    final_lr: float
    final_epoch: float
    shape: Shape
    shape_error: float
    config_sched: str | None
    config_warmup_epochs: float | None
    config_lr: float | None
    expected_peak_lr: float | None
    mismatches: tuple[str, ...]


def reconstruct_schedule(
    epoch_lr: MetricSeries | None, step_lr: MetricSeries | None, steps: pd.DataFrame | None,
    config: TrainConfig | None,
) -> Schedule | None:
    """The schedule from the epoch LRs (preferred) or the step LRs; None when no finite LR exists."""
    if epoch_lr is not None and np.isfinite(epoch_lr.y).any():
        finite = np.isfinite(epoch_lr.y)
        x, y = epoch_lr.x[finite], epoch_lr.y[finite]
        source: Literal["epoch", "step"] = "epoch"
        per_epoch_x, per_epoch_y = x, y
    elif step_lr is not None and steps is not None and np.isfinite(step_lr.y).any():
        finite = np.isfinite(step_lr.y)
        x = _step_epochs(step_lr, steps)[finite]
        y = step_lr.y[finite]
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        source = "step"
        per_epoch_x, per_epoch_y = _per_epoch_median(step_lr.epoch[finite][order], y)
        if not per_epoch_x.size:  # epochs of the steps unknown (TensorBoard steps only): the update axis
            per_epoch_x, per_epoch_y = x, y
    else:
        return None
    return _build(source, x, y, per_epoch_x, per_epoch_y, config)


def _step_epochs(step_lr: MetricSeries, steps: pd.DataFrame) -> np.ndarray:
    """Fractional epoch of each step point: update index / updates per epoch, else the integer epoch."""
    per_epoch = pd.to_numeric(steps["per_epoch"], errors="coerce") if "per_epoch" in steps else pd.Series([])
    per_epoch = per_epoch[np.isfinite(per_epoch) & (per_epoch > 0)]
    if len(per_epoch):
        return step_lr.x / float(per_epoch.median())
    epochs = step_lr.epoch.astype(float)
    return epochs if np.isfinite(epochs).any() else step_lr.x.astype(float)


def _per_epoch_median(epochs: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.DataFrame({"epoch": epochs, "lr": values}).dropna()
    grouped = frame.groupby("epoch")["lr"].median()
    return grouped.index.to_numpy(dtype=float), grouped.to_numpy(dtype=float)


def _build(
    source: Literal["epoch", "step"], x: np.ndarray, y: np.ndarray,
    ex: np.ndarray, ey: np.ndarray, given: TrainConfig | None,
) -> Schedule:
    config = given if given is not None else _NO_CONFIG
    peak_lr = float(np.max(y))
    peak_index = int(np.argmax(y >= peak_lr * (1.0 - PEAK_REL_TOL)))
    peak_epoch = float(x[peak_index])
    epoch_peak = int(np.argmax(ey >= float(np.max(ey)) * (1.0 - PEAK_REL_TOL)))
    if float(np.max(ey)) > 0.0:
        shape, error = _shape(ex[epoch_peak:], ey[epoch_peak:] / float(np.max(ey)), ex[0],
                              config.text("sched"))
    else:  # an LR of zero (or below) throughout: nothing to scale by
        shape, error = ("constant", 0.0) if np.ptp(ey) == 0.0 else ("unknown", math.nan)
    schedule = Schedule(
        source=source, epochs=tuple(float(v) for v in ex), lrs=tuple(float(v) for v in ey),
        initial_lr=float(y[0]), warmup_epochs=peak_epoch - float(x[0]),
        peak_lr=peak_lr, peak_epoch=peak_epoch, final_lr=float(y[-1]), final_epoch=float(x[-1]),
        shape=shape, shape_error=error,
        config_sched=config.text("sched"),
        config_warmup_epochs=config.number("warmup_epochs"),
        config_lr=config.number("lr"),
        expected_peak_lr=_expected_peak(config),
        mismatches=(),
    )
    return _with_mismatches(schedule, given, last_x=float(x[-1]))


# ----------------------------------------------------------------------------------------------------------
# Shape


def _shape(t: np.ndarray, v: np.ndarray, first_epoch: float, config_sched: str | None) -> tuple[Shape, float]:
    """Classify the post-peak curve ``v`` (LR / peak) over epochs ``t``."""
    if v.size == 0:
        return "unknown", math.nan
    if np.all(np.abs(v - 1.0) <= CONSTANT_TOL):
        return "constant", float(np.sqrt(np.mean((v - 1.0) ** 2)))
    if v.size < 3:
        return "unknown", math.nan
    if _is_step(v):
        return "step", 0.0
    fits = {
        "linear": _fit_linear(t, v),
        "exponential": _fit_exponential(t, v),
        "cosine": _fit_cosine(t, v, first_epoch),
    }
    best = min(fits.values())
    if best > SHAPE_MAX_ERROR:
        return "unknown", best
    tied = [name for name, error in fits.items() if error <= best + SHAPE_TIE]
    preferred = _SCHED_SHAPES.get((config_sched or "").lower())
    if preferred in tied:
        return preferred, fits[preferred]  # type: ignore[return-value]
    name = min(fits, key=fits.get)  # type: ignore[arg-type]
    return name, fits[name]  # type: ignore[return-value]


def _is_step(v: np.ndarray) -> bool:
    ratios = v[1:] / np.where(v[:-1] == 0, np.nan, v[:-1])
    changes = np.abs(ratios - 1.0) > STEP_CHANGE_TOL
    if not changes.any():
        return False
    drops_big = np.all(ratios[changes] <= 1.0 - STEP_MIN_DROP)
    return bool(drops_big and changes.sum() <= max(1, STEP_MAX_CHANGE_SHARE * changes.size))


def _rms_of_linear_fit(basis: np.ndarray, v: np.ndarray) -> float:
    """RMS residual of v ~ a + b * basis by least squares."""
    design = np.column_stack([np.ones_like(basis), basis])
    coef, *_ = np.linalg.lstsq(design, v, rcond=None)
    return float(np.sqrt(np.mean((design @ coef - v) ** 2)))


def _fit_linear(t: np.ndarray, v: np.ndarray) -> float:
    return _rms_of_linear_fit(t, v)


def _fit_exponential(t: np.ndarray, v: np.ndarray) -> float:
    if np.any(v <= 0):
        return math.inf
    design = np.column_stack([np.ones_like(t), t])
    coef, *_ = np.linalg.lstsq(design, np.log(v), rcond=None)
    return float(np.sqrt(np.mean((np.exp(design @ coef) - v) ** 2)))


def _fit_cosine(t: np.ndarray, v: np.ndarray, first_epoch: float) -> float:
    """Best half-cosine (free floor and amplitude) over start points and lengths (module docstring)."""
    span = max(float(t[-1] - t[0]), 1.0)
    bases = []
    for start in {float(first_epoch), float(t[0])}:
        reach = max(float(t[-1]) - start, 1.0)
        lengths = np.geomspace(0.5 * reach, 8.0 * reach + span, 80)
        phase = np.clip((t[None, :] - start) / lengths[:, None], 0.0, 1.0)
        bases.append(0.5 * (1.0 + np.cos(math.pi * phase)))
    return float(np.min(_rms_of_linear_fits(np.concatenate(bases), v)))


def _rms_of_linear_fits(bases: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``_rms_of_linear_fit`` for every row of ``bases`` at once: the closed-form least-squares line
    (residual sum of squares ``Svv - Sbv^2 / Sbb``), one array operation instead of a ``lstsq`` per
    candidate (160 per schedule). A row without spread is fitted by the mean alone, as lstsq does."""
    centred_v = v - v.mean()
    centred = bases - bases.mean(axis=1, keepdims=True)
    s_bb = np.einsum("ij,ij->i", centred, centred)
    s_bv = centred @ centred_v
    s_vv = float(centred_v @ centred_v)
    # lstsq drops a basis whose spread is below its rank cutoff (eps * n * largest singular value)
    flat = s_bb <= (np.finfo(float).eps * v.size) ** 2 * (s_bb.max(initial=0.0) + v.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        rss = np.where(flat, s_vv, s_vv - s_bv * s_bv / np.where(flat, 1.0, s_bb))
    return np.sqrt(np.maximum(rss, 0.0) / v.size)


# ----------------------------------------------------------------------------------------------------------
# Config comparison (values read through TrainConfig's typed readers, which never raise)

_NO_CONFIG = TrainConfig(values={})


def _expected_peak(config: TrainConfig) -> float | None:
    """The peak LR the config implies, or None (no lr, or layer decay scales the logged mean LR)."""
    lr = config.number("lr")
    if lr is None or lr <= 0 or config.flag("layer_decay"):
        return None
    warmup = config.number("warmup_epochs") or 0.0
    epochs = config.number("epochs")
    sched = (config.text("sched") or "").lower()
    prefix = config.flag("warmup_prefix")
    if sched == "cosine" and warmup > 0 and not prefix and epochs and epochs > 0:
        # timm's cosine runs from epoch 0 underneath the warm-up, so the ramp ends on an already-decayed LR
        return cosine_lr(lr, config.number("min_lr") or 0.0, warmup, epochs)
    return lr


def _with_mismatches(schedule: Schedule, config: TrainConfig | None, last_x: float) -> Schedule:
    if config is None:
        return schedule
    found: list[str] = []
    from_start = schedule.epochs[0] <= 0.0 if schedule.epochs else False
    warmup = schedule.config_warmup_epochs
    tolerance = WARMUP_TOL * (2.0 if config.flag("sched_on_updates") else 1.0)
    peak_at_end = schedule.peak_epoch >= last_x
    if from_start and warmup is not None and not (peak_at_end and warmup > schedule.warmup_epochs):
        if abs(schedule.warmup_epochs - warmup) > tolerance:
            found.append(
                f"LR peaks after {schedule.warmup_epochs:g} epochs (epoch {schedule.peak_epoch:g}), "
                f"but warmup_epochs is {warmup:g}"
            )
    warmup_lr = config.number("warmup_lr")
    if from_start and warmup and warmup_lr and warmup_lr > 0:
        if abs(schedule.initial_lr / warmup_lr - 1.0) > PEAK_TOL:
            found.append(f"first LR {schedule.initial_lr:.4g} differs from warmup_lr {warmup_lr:.4g}")
    expected = schedule.expected_peak_lr
    # A run logged from mid-schedule (resumed into a new folder at epoch 41) never shows its peak.
    if expected and from_start and not (peak_at_end and warmup and warmup > schedule.warmup_epochs):
        ratio = schedule.peak_lr / expected
        if abs(ratio - 1.0) > PEAK_TOL:
            found.append(
                f"peak LR {schedule.peak_lr:.4g} (epoch {schedule.peak_epoch:g}) is {ratio:.3g}x the "
                f"{expected:.4g} that lr {schedule.config_lr:.4g} implies"
            )
    found.extend(_shape_mismatch(schedule, config))
    return _replace(schedule, mismatches=tuple(found))


def _shape_mismatch(schedule: Schedule, config: TrainConfig) -> list[str]:
    sched = (schedule.config_sched or "").lower()
    expected = _SCHED_SHAPES.get(sched)
    post_peak = sum(1 for e in schedule.epochs if e >= schedule.peak_epoch)
    if expected is None or post_peak < SHAPE_MIN_POINTS or schedule.shape in ("unknown", expected):
        return []
    if schedule.shape == "constant":
        epochs = config.number("epochs")
        covered = schedule.final_epoch - schedule.epochs[0] + 1
        if sched != "cosine" or not epochs or covered < 0.5 * epochs:
            return []  # too little of the schedule seen for a cosine to have moved
    return [f"LR decays like '{schedule.shape}', but sched is '{schedule.config_sched}'"]


def _replace(schedule: Schedule, **changes: Any) -> Schedule:
    from dataclasses import replace

    return replace(schedule, **changes)
