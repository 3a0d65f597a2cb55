"""TensorBoard scalars -> epoch values and step rows: what the ``step`` of each tag means.

A writer gives every scalar a step, but scripts mean different things by it:

- *epoch index*: one value per epoch at step = epoch (timm-like scripts, the PyTorch tutorials,
  Ultralytics at 1..N);
- *global step*: per-step metrics (``train/loss`` every optimizer step) and, in the PyTorch
  Lightning convention, epoch-level metrics too, logged once an epoch at the global step of the
  epoch's end (``val/acc`` at 3120, 6240, ...).

How a tag is classified (the principle: validation runs once per epoch, so eval metrics are the
clock of epochs; a tag logged more than twice as often as that clock is per step):

1. An ``epoch`` tag (Lightning logs one) maps every global step to its epoch exactly; a tag with at
   most ~one point per epoch is epoch-level, the others per step.
2. Else the epoch count ``E`` is the densest eval metric's point count, or, without eval tags, the
   epochs the other files of the run established. A tag with more than ``2 E + 1`` points is per
   step; with no ``E`` at all (a file of train loss and LR only) every tag is per step unless its
   name says epoch (``train_loss_epoch``).
3. Epoch-level tags whose steps reach as far as the per-step tags' are on the global step: epoch
   ``round(step / k) - 1`` (at least 0), with ``k`` the spacing of their steps (the steps of one
   epoch). Otherwise their steps are epoch indices (1-based when they start at 1 and no other file
   gave epochs), and a per-step tag's epoch is ``step // q`` with ``q`` its steps per epoch (its step
   range over ``E``).

Per-step ``train_loss`` and ``lr`` become the step frame (``update`` = the global step; ``epoch``,
``idx`` and ``per_epoch`` when the epochs are known, else NaN). When the epochs are known and no
epoch-level tag has them, each epoch gets the mean of its step losses (what timm's running average
reports) and the LR of its first step, as timm's own log does. The mapping chosen is stated in the
event files' ``SourceInfo.family``, which ``inspect`` shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.ingest.contribution import Contribution, EpochContext, EpochValues
from mnv4_postmortem.analyzer.ingest.tensorboard import TensorBoardScalars
from mnv4_postmortem.analyzer.model import STEP_COLUMNS, SourceInfo, SourceRef

FAMILY = "TensorBoard event file"
EPOCH_TAGS = ("epoch", "trainer/epoch")     # Lightning's own epoch counter
STEP_FRAME_METRICS = ("train_loss", "lr")   # per-step metrics the step frame has columns for
# A tag logged more often than this many times per epoch (plus one) is a per-step tag.
POINTS_PER_EPOCH_LIMIT = 2
MAX_EPOCH = 10**7      # an epoch number past this (or below 0) from a global-step mapping is junk, dropped


@dataclass(frozen=True, slots=True)
class _Axis:
    """How the steps of the per-step and epoch-level tags map to epochs."""

    per_step: frozenset[str]               # metrics logged per step
    global_epochs: bool                    # epoch-level tags are on the global step too
    steps_per_epoch: float | None = None   # when epochs of steps are known from a ratio
    epoch_of_step: pd.Series | None = None  # from an ``epoch`` tag: step -> epoch (sorted by step)
    how: str = ""                          # the sentence inspect shows

    def epochs_of(self, steps: np.ndarray) -> np.ndarray:
        """The epoch of each global step (float, NaN when unknown)."""
        if self.epoch_of_step is not None:
            keys = self.epoch_of_step.index.to_numpy()
            at = np.clip(np.searchsorted(keys, steps, side="right") - 1, 0, len(keys) - 1)
            return self.epoch_of_step.to_numpy(dtype=float)[at]
        if self.steps_per_epoch:
            return np.floor(steps / self.steps_per_epoch)
        return np.full(len(steps), math.nan)


def scalars_contribution(tb: TensorBoardScalars) -> Contribution:
    """The run's combined event files; how their steps map to epochs waits for the epochs the other
    files establish (``resolve``)."""
    def resolve(context: EpochContext) -> Contribution:
        frame = tb.frame
        is_epoch_tag = frame["tag"].str.lower().isin(EPOCH_TAGS) if not frame.empty else None
        axis = _classify(frame, context.n_epochs)
        # the epoch counter itself is the clock, not a metric
        epochs, steps = _split(frame if is_epoch_tag is None else frame[~is_epoch_tag], axis, context.n_epochs)
        return Contribution(format="tensorboard", sources=_sources(tb, axis), epochs=epochs, steps=steps,
                            issues=tb.issues, step_scalars=_step_scalars(frame, axis))

    # sources and values come with the resolved Contribution, which the merge uses instead of this one
    return Contribution(format="tensorboard", sources=(), issues=tb.issues, resolve=resolve)


# ------------------------------------------------------------------------------------------ classification


def _classify(frame: pd.DataFrame, n_epochs_hint: int) -> _Axis:
    if frame.empty:
        return _Axis(frozenset(), False)
    is_epoch_tag = frame["tag"].str.lower().isin(EPOCH_TAGS)
    epoch_tag, frame = frame[is_epoch_tag], frame[~is_epoch_tag]
    if frame.empty:
        return _Axis(frozenset(), False)
    stats = frame.groupby("metric", sort=False)["step"].agg(["nunique", "max"])   # one pass over the strings
    counts, max_step = stats["nunique"], stats["max"]
    values = epoch_tag["value"].to_numpy(dtype=float)
    epoch_tag = epoch_tag[np.isfinite(values) & (values >= 0) & (values <= MAX_EPOCH)]
    if len(epoch_tag):
        return _by_epoch_tag(frame, epoch_tag, counts)
    evals = [m for m in counts.index if str(m).startswith("eval_")]
    if evals:
        reference = int(counts[evals].max())
        basis = f"{reference} points of {_tags(frame, [max(evals, key=lambda m: counts[m])])}"
    elif n_epochs_hint:
        reference, basis = n_epochs_hint, f"the {n_epochs_hint} epochs of the other files"
    else:
        reference, basis = 0, ""
    if reference:
        per_step = frozenset(m for m in counts.index if counts[m] > POINTS_PER_EPOCH_LIMIT * reference + 1)
    else:
        per_step = frozenset(m for m in counts.index if not _named_epoch(frame, m))
    if not per_step:
        return _Axis(per_step, False)   # every tag once an epoch: steps are epoch indices
    names = _tags(frame, per_step)
    epoch_level = [m for m in counts.index if m not in per_step]
    step_reach = int(max_step[list(per_step)].max())
    if epoch_level and int(max_step[epoch_level].max()) * 2 >= step_reach:
        densest = max(epoch_level, key=lambda m: counts[m])
        steps = np.unique(frame.loc[frame["metric"] == densest, "step"].to_numpy())
        spacing = float(np.median(np.diff(steps))) if steps.size > 1 else float(steps[0] or 0)
        if spacing >= 1:
            how = (f"per-step tags {names} on the global step; epoch-level tags at the global step of each epoch "
                   f"({spacing:g} steps per epoch from the spacing of {_tags(frame, [densest])}): epoch = step / {spacing:g} - 1")
            return _Axis(per_step, True, steps_per_epoch=spacing, how=how)
    if reference:
        first = int(frame.loc[frame["metric"].isin(per_step), "step"].min())
        ratio = (step_reach - first + 1) / reference
        if ratio >= 1:
            how = f"per-step tags {names}: {ratio:g} steps per epoch (their {step_reach - first + 1} steps over {basis})"
            return _Axis(per_step, False, steps_per_epoch=ratio, how=how)
    how = (f"per-step tags {names} on the global step; no eval metric, epoch tag or other file tells the epochs, "
           "so steps are not mapped to epochs")
    return _Axis(per_step, False, how=how)


def _by_epoch_tag(frame: pd.DataFrame, epoch_tag: pd.DataFrame, counts: pd.Series) -> _Axis:
    table = epoch_tag.sort_values("step").drop_duplicates("step", keep="last").set_index("step")["value"].round()
    n_epochs = max(int(table.nunique()), 1)
    tag = str(epoch_tag["tag"].iloc[0])
    per_step = frozenset(m for m in counts.index if counts[m] > POINTS_PER_EPOCH_LIMIT * n_epochs + 1)
    how = (f"global steps mapped to epochs by the {tag} tag ({n_epochs} epochs)"
           + (f"; per-step tags {_tags(frame, per_step)}" if per_step else ""))
    return _Axis(per_step, True, epoch_of_step=table, how=how)


def _named_epoch(frame: pd.DataFrame, metric: str) -> bool:
    tags = frame.loc[frame["metric"] == metric, "tag"].unique()
    return any("epoch" in str(tag).lower() for tag in tags)


def _tags(frame: pd.DataFrame, metrics) -> str:
    tags = sorted({str(t) for t in frame.loc[frame["metric"].isin(list(metrics)), "tag"].unique()})
    return ", ".join(tags[:6]) + (f" (+{len(tags) - 6})" if len(tags) > 6 else "")


# ------------------------------------------------------------------------------------------ values


def _split(frame: pd.DataFrame, axis: _Axis, n_epochs_hint: int) -> tuple[tuple[EpochValues, ...], pd.DataFrame | None]:
    if frame.empty:
        return (), None
    out: list[EpochValues] = []
    for metric, group in frame.groupby("metric", sort=False):
        if metric in axis.per_step:
            continue
        out.append(_epoch_level_values(str(metric), group, axis, n_epochs_hint))
    steps = _step_rows(frame, axis)
    if steps is not None:
        out.extend(_epochs_from_steps(steps, set(frame.loc[~frame["metric"].isin(axis.per_step), "metric"])))
    return tuple(v for v in out if v.points), steps


def _epoch_level_values(metric: str, group: pd.DataFrame, axis: _Axis, n_epochs_hint: int) -> EpochValues:
    group = group.sort_values(["step", "wall_time"]).drop_duplicates("step", keep="last")
    steps = group["step"].to_numpy()
    if axis.epoch_of_step is not None:
        epochs = axis.epochs_of(steps)
    elif axis.global_epochs and axis.steps_per_epoch:
        epochs = np.maximum(np.round(steps / axis.steps_per_epoch) - 1, 0)
    else:
        # epoch indices; 1..N are epochs 0..N-1 when no other file says which epochs there are
        offset = 1 if steps.min() >= 1 and n_epochs_hint == 0 and not (steps == 0).any() else 0
        epochs = steps - offset
    latest: dict[int, tuple[str, int, float, SourceRef]] = {}
    for epoch, value, file, record in zip(epochs.tolist(), group["value"].tolist(),
                                          group["file"].tolist(), group["record"].tolist()):
        if math.isfinite(epoch) and (axis.epoch_of_step is None and not axis.global_epochs or 0 <= epoch <= MAX_EPOCH):
            # a later point of the same epoch (a second validation) wins, as a later write of one step does
            latest[int(epoch)] = (metric, int(epoch), float(value), SourceRef(str(file), record=int(record)))
    return EpochValues(list(latest.values()))


def _step_rows(frame: pd.DataFrame, axis: _Axis) -> pd.DataFrame | None:
    """One row per global step that has a per-step train_loss or lr."""
    columns: dict[str, pd.Series] = {}
    sources: list[pd.DataFrame] = []
    for metric in STEP_FRAME_METRICS:
        if metric not in axis.per_step:
            continue
        part = frame[frame["metric"] == metric]
        # several tags for one metric (lr-AdamW/pg1 next to lr): the first tag in name order
        part = part[part["tag"] == sorted(part["tag"].unique())[0]]
        part = part.drop_duplicates("step", keep="last").set_index("step")
        columns[metric] = part["value"]
        sources.append(part[["file", "record"]])
    if not columns:
        return None
    table = pd.DataFrame(columns).sort_index()
    where = pd.concat(sources)
    where = where[~where.index.duplicated(keep="first")].reindex(table.index)
    step = table.index.to_numpy(dtype=np.int64)
    epoch = axis.epochs_of(step.astype(float))
    epoch[(epoch < 0) | (epoch > MAX_EPOCH)] = math.nan
    per_epoch = axis.steps_per_epoch
    if axis.epoch_of_step is not None:
        first_of_epoch = pd.Series(step).groupby(epoch).transform("min").to_numpy(dtype=float)
        idx = step - first_of_epoch
        per_epoch_column = pd.Series(step).groupby(epoch).transform("count").to_numpy(dtype=float)
    elif per_epoch:
        idx = step - epoch * per_epoch
        per_epoch_column = np.full(len(step), float(round(per_epoch)))
    else:
        idx = np.full(len(step), math.nan)
        per_epoch_column = np.full(len(step), math.nan)
    nan = np.full(len(step), math.nan)
    rows = pd.DataFrame({
        "epoch": epoch, "idx": np.floor(idx), "per_epoch": per_epoch_column, "update": step.astype(float),
        "train_loss": table["train_loss"].to_numpy(dtype=float) if "train_loss" in table else nan,
        "train_loss_avg": nan, "lr": table["lr"].to_numpy(dtype=float) if "lr" in table else nan,
        "samples_per_sec": nan, "batch_time": nan, "data_time": nan,
        "segment": np.zeros(len(step), dtype=np.int64), "src_line": where["record"].to_numpy(dtype=np.int64),
    })
    assert list(rows.columns) == [*STEP_COLUMNS, "segment", "src_line"]
    rows["src_file"] = where["file"].astype(str).to_numpy()
    return rows


def _step_scalars(frame: pd.DataFrame, axis: _Axis) -> pd.DataFrame | None:
    """Per-step metrics the step frame has no column for (``grad_norm``, ...): wide, indexed by global step."""
    extra = [m for m in axis.per_step if m not in STEP_FRAME_METRICS]
    if frame.empty or not extra:
        return None
    part = frame[frame["metric"].isin(extra)].sort_values(["step", "wall_time"])
    part = part.drop_duplicates(["metric", "step"], keep="last")
    wide = part.pivot(index="step", columns="metric", values="value").sort_index()
    wide.index = wide.index.astype("int64").rename("update")
    wide.columns = [str(c) for c in wide.columns]
    return wide.astype("float64")


def _epochs_from_steps(steps: pd.DataFrame, epoch_level: set[str]) -> list[EpochValues]:
    """Per-epoch train loss (mean of the epoch's steps) and LR (its first step) where no epoch-level
    tag has them and the epochs of the steps are known."""
    known = steps[np.isfinite(steps["epoch"].to_numpy(dtype=float))]
    if known.empty:
        return []
    grouped = known.groupby("epoch", sort=True)
    out = []
    if "train_loss" not in epoch_level and np.isfinite(known["train_loss"].to_numpy(dtype=float)).any():
        # a plain mean: a NaN step makes the epoch NaN, as it does timm's running average
        means = grouped["train_loss"].agg(lambda v: float(np.mean(v.to_numpy(dtype=float))))
        last = grouped.tail(1).set_index("epoch")
        out.append(EpochValues([
            ("train_loss", int(e), float(v), SourceRef(str(last.at[e, "src_file"]), record=int(last.at[e, "src_line"])))
            for e, v in means.items()]))
    if "lr" not in epoch_level and np.isfinite(known["lr"].to_numpy(dtype=float)).any():
        first = grouped.head(1)
        out.append(EpochValues([("lr", int(r.epoch), float(r.lr), SourceRef(str(r.src_file), record=int(r.src_line)))
                                for r in first.itertuples(index=False)]))
    return out


# ------------------------------------------------------------------------------------------ sources


def _sources(tb: TensorBoardScalars, axis: _Axis | None) -> tuple[SourceInfo, ...]:
    frame = tb.frame
    family = f"{FAMILY}; {axis.how}" if axis is not None and axis.how else FAMILY
    # per file at once: iterating a million-row string column in Python costs seconds
    metrics = frame.groupby("file", sort=False)["metric"].unique() if not frame.empty else pd.Series(dtype=object)
    counts = frame["file"].value_counts() if not frame.empty else pd.Series(dtype="int64")
    return tuple(
        SourceInfo(name, "tensorboard", family, None,
                   tuple(sorted(str(m) for m in metrics.get(name, ()))), None, int(counts.get(name, 0)))
        for name in tb.files
    )
