"""``detect(run)``: every detector over one normalized run, gathered into a ``Detection``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.model import Run
from mnv4_postmortem.analyzer.detect import metrics, patterns
from mnv4_postmortem.analyzer.detect.patterns import (
    ChanceLevel,
    EmaGap,
    ExactStall,
    Explosion,
    GeneralizationGap,
    Incomplete,
    NonFinite,
    Spike,
)
from mnv4_postmortem.analyzer.detect.gradients import GradientFacts, find_gradient_facts, gradient_series
from mnv4_postmortem.analyzer.detect.schedule import Schedule, reconstruct_schedule
from mnv4_postmortem.analyzer.detect.segments import Segment, segment_series
from mnv4_postmortem.analyzer.detect.series import MetricSeries, epoch_frame, epoch_series, lr_at_epoch, step_series


@dataclass(frozen=True, slots=True, eq=False)
class Detection:
    """What the statistics say about one run, before any rule interprets it.

    segments: per series, its regimes in x order (read-only mapping). Keys are the epoch column names
        (``"eval_top1"``, ``"lr"``, extra TensorBoard tags) and ``"step:train_loss"`` / ``"step:lr"``.
    stalls: runs of identical values over >= 2 epochs.
    chance: epoch ranges at chance level (needs ``num_classes``).
    nonfinite: the first NaN/inf of each series.
    spikes: isolated bad-direction outliers of losses and accuracies.
    explosions: sustained excursions of losses far above their start.
    gap: the largest eval-loss rise while train loss falls (overfitting), if any.
    ema_gap: model vs EMA top-1 per epoch, when both passes were logged.
    schedule: the LR schedule as logged, with its differences from the config.
    incomplete: set when the run stopped before its scheduled last epoch.
    num_classes: the class count used for chance levels (None when the config has none).
    chance_levels: metric -> the value a uniform guesser reports (``metrics.chance_levels``, for every epoch
        column that has one): computed here once; the segmenter, the chance detector and the report read it.
    epochs_scheduled: the epoch count the run was scheduled for (None when unknown).
    gradients: exploding / vanishing norms and weak layer groups, when the run logged gradient norms.
    """

    segments: Mapping[str, tuple[Segment, ...]]
    stalls: tuple[ExactStall, ...]
    chance: tuple[ChanceLevel, ...]
    nonfinite: tuple[NonFinite, ...]
    spikes: tuple[Spike, ...]
    explosions: tuple[Explosion, ...]
    gap: GeneralizationGap | None
    ema_gap: EmaGap | None
    schedule: Schedule | None
    incomplete: Incomplete | None
    num_classes: int | None = None
    epochs_scheduled: int | None = None
    gradients: GradientFacts | None = None
    chance_levels: Mapping[str, float] = field(default_factory=dict)


def detect(run: Run) -> Detection:
    """Run every detector on ``run``. Never raises on odd data: empty frames give an empty Detection."""
    # Overflow in sums of squares of absurd values (1e300) is expected and handled where it matters.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _detect(run)


def _detect(run: Run) -> Detection:
    classes = metrics.valid_num_classes(run.config.count("num_classes"))
    frame = epoch_frame(run)
    per_epoch = epoch_series(run, frame)
    per_step = step_series(run)
    every = {**per_epoch, **per_step}
    steps = run.steps if isinstance(run.steps, pd.DataFrame) else None

    levels = metrics.chance_levels(getattr(run.epochs, "columns", ()), classes)
    segments = MappingProxyType({name: _segments(s, levels) for name, s in every.items()})
    lr_of_epoch = _lr_by_epoch(frame, steps, every)
    scheduled, basis = _epochs_scheduled(run)
    return Detection(
        segments=segments,
        stalls=patterns.find_exact_stalls(per_epoch),
        chance=patterns.find_chance_levels(per_epoch, levels, classes),
        nonfinite=patterns.find_nonfinite(every, lr_of_epoch, per_step.get("step:lr")),
        spikes=patterns.find_spikes(every),
        explosions=patterns.find_explosions(every, classes),
        gap=patterns.find_generalization_gap(segments, per_epoch),
        ema_gap=patterns.find_ema_gap(per_epoch),
        schedule=reconstruct_schedule(per_epoch.get("lr"), per_step.get("step:lr"), steps, run.config),
        incomplete=patterns.find_incomplete(_last_epoch(per_epoch), scheduled, basis),
        num_classes=classes,
        epochs_scheduled=scheduled,
        gradients=find_gradient_facts(gradient_series(run)),
        chance_levels=levels,
    )


def _segments(s: MetricSeries, levels: Mapping[str, float]) -> tuple[Segment, ...]:
    chance = levels.get(s.name) if s.unit == "epoch" else None
    return segment_series(s.x, s.y, s.name, s.unit, chance=chance)


def _lr_by_epoch(
    frame: pd.DataFrame, steps: pd.DataFrame | None, every: Mapping[str, MetricSeries],
) -> dict[int, float]:
    """The LR of every epoch that has a non-finite value somewhere (that is where it is asked for)."""
    wanted: set[int] = set()
    for s in every.values():
        bad = ~np.isfinite(s.y)
        wanted.update(int(e) for e in s.epoch[bad] if math.isfinite(e))
    out = {}
    for epoch in sorted(wanted):
        lr = lr_at_epoch(frame, steps, epoch)
        if lr is not None:
            out[epoch] = lr
    return out


def _epochs_scheduled(run: Run) -> tuple[int | None, str]:
    """The schedule length the ingest resolved (timm.recipe.schedule_length), and where it came from."""
    scheduled = run.epochs_scheduled
    if isinstance(scheduled, (int, np.integer)) and not isinstance(scheduled, bool) and scheduled > 0:
        return int(scheduled), str(run.config.effective_sources.get("epochs_scheduled", "run.epochs_scheduled"))
    return None, ""


def _last_epoch(series: Mapping[str, MetricSeries]) -> int | None:
    """The last epoch with any value (finite or not) in any metric."""
    last = [float(s.epoch[-1]) for s in series.values() if len(s) and math.isfinite(s.epoch[-1])]
    return int(max(last)) if last else None
