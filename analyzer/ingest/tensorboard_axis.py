"""TensorBoard scalars -> epoch values and step rows: what the step axis of each tag means.

(placeholder: the pre-registry rule, kept while the registry lands)
"""

from __future__ import annotations

import numpy as np

from mnv4_postmortem.analyzer.ingest.contribution import Contribution, EpochContext, EpochValues
from mnv4_postmortem.analyzer.ingest.tensorboard import TensorBoardScalars
from mnv4_postmortem.analyzer.model import SourceInfo, SourceRef


def scalars_contribution(tb: TensorBoardScalars) -> Contribution:
    """The run's combined event files; their epoch values wait for the epochs the other sources know."""
    def resolve(context: EpochContext) -> Contribution:
        return Contribution(format="tensorboard", sources=_sources(tb), epochs=_epoch_values(tb, context),
                            issues=tb.issues)

    return Contribution(format="tensorboard", sources=_sources(tb), issues=tb.issues, resolve=resolve)


def _sources(tb: TensorBoardScalars) -> tuple[SourceInfo, ...]:
    frame = tb.frame
    infos = []
    for name in tb.files:
        part = frame[frame["file"] == name] if not frame.empty else frame
        metrics = tuple(sorted(set(part["metric"]))) if not part.empty else ()
        infos.append(SourceInfo(name, "tensorboard", "TensorBoard event file", None, metrics, None, len(part)))
    return tuple(infos)


def _epoch_values(tb: TensorBoardScalars, context: EpochContext) -> tuple[EpochValues, ...]:
    frame = tb.frame
    if frame.empty:
        return ()
    n_epochs_hint = context.n_epochs
    out = []
    for metric, group in frame.groupby("metric", sort=False):
        steps = group["step"].to_numpy()
        if not _looks_epoch_level(steps, n_epochs_hint):
            continue
        offset = 1 if steps.min() >= 1 and n_epochs_hint == 0 and not (steps == 0).any() else 0
        group = group.sort_values(["step", "wall_time"]).drop_duplicates("step", keep="last")
        out.append(EpochValues([(str(metric), int(row.step) - offset, float(row.value),
                                 SourceRef(str(row.file), record=int(row.record))) for row in group.itertuples(index=False)]))
    return tuple(out)


def _looks_epoch_level(steps: np.ndarray, n_epochs_hint: int) -> bool:
    unique = np.unique(steps)
    if unique.size == 0:
        return False
    span = unique.max() - unique.min() + 1
    dense = unique.size >= 0.8 * span
    small = unique.max() <= max(5000, 2 * n_epochs_hint)
    return bool(dense and small)
