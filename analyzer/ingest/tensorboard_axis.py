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
    """How the steps of the per-step and epoch-level tags map to epochs.

    Three ways, one per what the file tells (see :func:`epoch_axis`):

    - ``boundaries``: the global steps that close epochs (an eval point or an ``epoch`` tag point
      per epoch, on the global step) and the epoch each closes. A per-step point at step ``s``
      belongs to the first epoch whose boundary is at or after ``s`` (``inclusive``: the loop
      logged the epoch's last train step and then validated at that same step) or after ``s``
      (not ``inclusive``: validation was logged at the next step, the first of the next epoch).
      An epoch-level point belongs to the first boundary at or after it. Steps past the last
      boundary (a run stopped mid-epoch) continue at ``steps_per_epoch`` per epoch.
    - ``steps_per_epoch`` alone: epoch-level tags are on epoch indices, per-step tags at that
      many steps per epoch from their first step.
    - neither: steps are not mapped to epochs.
    """

    per_step: frozenset[str]               # metrics logged per step
    global_epochs: bool                    # epoch-level tags are on the global step too
    steps_per_epoch: float | None = None   # when epochs of steps are known from a ratio or a spacing
    boundaries: np.ndarray | None = None   # int64 global steps closing epochs, ascending
    boundary_epochs: np.ndarray | None = None  # the epoch each boundary closes, ascending
    inclusive: bool = True                 # a per-step point at a boundary step is in the epoch it closes
    how: str = ""                          # the sentence inspect shows

    def epochs_of(self, steps: np.ndarray) -> np.ndarray:
        """The epoch of each per-step point's global step (float, NaN when unknown)."""
        steps = np.asarray(steps, dtype=float)
        if self.boundaries is not None and len(self.boundaries):
            side = "left" if self.inclusive else "right"
            return self._from_boundaries(steps, side, past_offset=1.0 if self.inclusive else 0.0, closing=False)
        if self.steps_per_epoch:
            return np.floor(steps / self.steps_per_epoch)
        return np.full(len(steps), math.nan)

    def epochs_of_points(self, steps: np.ndarray) -> np.ndarray:
        """The epoch of each epoch-level point (an eval value) on the global step: the epoch it closes."""
        return self._from_boundaries(np.asarray(steps, dtype=float), "left", past_offset=0.0, closing=True)

    def _from_boundaries(self, steps: np.ndarray, side: str, past_offset: float, closing: bool) -> np.ndarray:
        bounds, epochs = self.boundaries, self.boundary_epochs
        assert bounds is not None and epochs is not None
        at = np.searchsorted(bounds, steps, side=side)
        inside = at < len(bounds)
        out = np.empty(len(steps), dtype=float)
        out[inside] = epochs[at[inside]]
        past = (steps[~inside] - bounds[-1] - past_offset) / (self.steps_per_epoch or 1.0)
        # past the last boundary: a point that closes an epoch closes the one it ends in; a step starts in one
        out[~inside] = epochs[-1] + (np.ceil(past) if closing else 1 + np.floor(past))
        return out


def scalars_contribution(tb: TensorBoardScalars) -> Contribution:
    """The run's combined event files; how their steps map to epochs waits for the epochs the other
    files establish (``resolve``)."""
    def resolve(context: EpochContext) -> Contribution:
        frame = tb.frame
        is_epoch_tag = _is_epoch_tag(frame) if not frame.empty else None
        axis = _classify(frame, context.n_epochs)
        # the epoch counter itself is the clock, not a metric
        epochs, steps = _split(frame if is_epoch_tag is None else frame[~is_epoch_tag], axis, context.n_epochs)
        return Contribution(format="tensorboard", sources=_sources(tb, axis), epochs=epochs, steps=steps,
                            issues=tb.issues, step_scalars=_step_scalars(frame, axis))

    # sources and values come with the resolved Contribution, which the merge uses instead of this one
    return Contribution(format="tensorboard", sources=(), issues=tb.issues, resolve=resolve)


# ------------------------------------------------------------------------------------------ classification


def epoch_axis(frame: pd.DataFrame, n_epochs_hint: int = 0) -> _Axis:
    """How the global steps of a run's combined TensorBoard scalars (``TensorBoardScalars.frame``)
    map to epochs: the one place that decides it, for every layout a training loop writes.

    Layouts (each covered by ``tests/test_tensorboard_epochs.py`` with files from a real
    ``SummaryWriter``): eval logged at the epoch's last train step, at the next step (the first of
    the next epoch), at the epoch's end counted 1-based; an ``epoch`` tag logged with each eval, at
    each epoch's start, at every step, or none; eval on epoch indices while train tags are per
    step; a restarted run (a second file overwriting steps). The principle: validation closes an
    epoch, so its points are the epochs' boundaries; whether a train step *at* a boundary step
    belongs to the epoch the boundary closes is read from the order the loop wrote them in.
    """
    if frame.empty:
        return _Axis(frozenset(), False)
    is_epoch_tag = _is_epoch_tag(frame)
    epoch_tag, frame = frame[is_epoch_tag], frame[~is_epoch_tag]
    if frame.empty:
        return _Axis(frozenset(), False)
    stats = frame.groupby("metric", sort=False)["step"].agg(["nunique", "max"])   # one pass over the strings
    counts, max_step = stats["nunique"], stats["max"]
    values = epoch_tag["value"].to_numpy(dtype=float)
    epoch_tag = epoch_tag[np.isfinite(values) & (values >= 0) & (values <= MAX_EPOCH)]
    tag_axis = _by_epoch_tag(frame, epoch_tag, counts, max_step) if len(epoch_tag) else None
    if tag_axis is not None:
        return tag_axis
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
        named_epoch = _metrics_named_epoch(frame)
        per_step = frozenset(m for m in counts.index if m not in named_epoch)
    if not per_step:
        return _Axis(per_step, False)   # every tag once an epoch: steps are epoch indices
    names = _tags(frame, per_step)
    epoch_level = [m for m in counts.index if m not in per_step]
    step_reach = int(max_step[list(per_step)].max())
    if epoch_level and int(max_step[epoch_level].max()) * 2 >= step_reach:
        densest = max(epoch_level, key=lambda m: counts[m])
        closing = frame[frame["metric"] == densest]
        axis = _closed_by_points(frame, per_step, closing, epochs=None)
        if axis is not None:
            how = (f"per-step tags {names} on the global step; epoch-level tags at the global step of each epoch's "
                   f"end ({axis.steps_per_epoch:g} steps per epoch from the spacing of {_tags(frame, [densest])}; "
                   f"a train step at an eval step is {'in the epoch it ends' if axis.inclusive else 'the next epoch'})")
            return _with_how(axis, how)
    if reference:
        first = int(frame.loc[frame["metric"].isin(per_step), "step"].min())
        ratio = (step_reach - first + 1) / reference
        if ratio >= 1:
            how = f"per-step tags {names}: {ratio:g} steps per epoch (their {step_reach - first + 1} steps over {basis})"
            return _Axis(per_step, False, steps_per_epoch=ratio, how=how)
    how = (f"per-step tags {names} on the global step; no eval metric, epoch tag or other file tells the epochs, "
           "so steps are not mapped to epochs")
    return _Axis(per_step, False, how=how)


# The name the rest of the module used; kept for callers outside it.
_classify = epoch_axis


def _with_how(axis: _Axis, how: str) -> _Axis:
    return _Axis(axis.per_step, axis.global_epochs, axis.steps_per_epoch, axis.boundaries,
                 axis.boundary_epochs, axis.inclusive, how)


def _by_epoch_tag(frame: pd.DataFrame, epoch_tag: pd.DataFrame, counts: pd.Series, max_step: pd.Series) -> _Axis | None:
    """The axis an ``epoch`` tag gives, or None when its steps are epoch indices (they do not reach
    the per-step tags' global steps) and so say nothing about the steps."""
    table = epoch_tag.sort_values(["step", "wall_time"]).drop_duplicates("step", keep="last")
    marks = table["value"].round().to_numpy(dtype=np.int64)
    n_epochs = max(len(np.unique(marks)), 1)
    tag = str(epoch_tag["tag"].iloc[0])
    per_step = frozenset(m for m in counts.index if counts[m] > POINTS_PER_EPOCH_LIMIT * n_epochs + 1)
    if not per_step:
        return _Axis(per_step, False, how=f"the {tag} tag counts {n_epochs} epochs; every tag once an epoch")
    if int(table["step"].max()) * 2 < int(max_step[list(per_step)].max()):
        return None
    if int(table["step"].iloc[0]) <= int(frame.loc[frame["metric"].isin(per_step), "step"].min()):
        # The counter is written as each epoch starts (Lightning: with every logged step): epoch e runs
        # from its first mark to the next epoch's first mark, exclusive.
        # The last epoch has no end mark: it runs to the end (a boundary past every step).
        changed = np.concatenate([[True], marks[1:] != marks[:-1]])
        starts, started = table["step"].to_numpy(dtype=np.int64)[changed], marks[changed]
        bounds = np.append(starts[1:], np.iinfo(np.int64).max)
        spacing = float(np.median(np.diff(starts))) if starts.size > 1 else None
        axis = _boundaries_axis(per_step, bounds, started, inclusive=False, spacing=spacing)
        kind = "at each epoch's start"
    else:
        # Written when an epoch ends (with its validation): each mark closes the epoch it names.
        axis = _closed_by_points(frame, per_step, table, epochs=marks)
        kind = "at each epoch's end"
    if axis is None:
        return None
    how = (f"global steps mapped to epochs by the {tag} tag, logged {kind} ({n_epochs} epochs)"
           + (f"; per-step tags {_tags(frame, per_step)}" if per_step else ""))
    return _with_how(axis, how)


def _closed_by_points(frame: pd.DataFrame, per_step: frozenset[str], closing: pd.DataFrame,
                      epochs: np.ndarray | None) -> _Axis | None:
    """The axis whose boundaries are the steps of ``closing`` (one point per epoch, written when the
    epoch ends). ``epochs``: the epoch each closes (an ``epoch`` tag's values); None: from the spacing,
    ``round(step / spacing) - 1``, so a skipped validation or a run resumed mid-way keeps its numbers."""
    closing = closing.sort_values(["step", "wall_time"]).drop_duplicates("step", keep="last")
    steps = closing["step"].to_numpy(dtype=np.int64)
    per_step_rows = frame[frame["metric"].isin(per_step)]
    first_step = int(per_step_rows["step"].min())
    spacing = float(np.median(np.diff(steps))) if steps.size > 1 else float(steps[0] - first_step + 1)
    if not spacing >= 1:
        return None
    if epochs is None:
        epochs = np.maximum(np.round(steps / spacing) - 1, 0).astype(np.int64)
    inclusive = _train_written_first(per_step_rows, closing)
    return _boundaries_axis(per_step, steps, np.asarray(epochs, dtype=np.int64), inclusive, spacing)


def _boundaries_axis(per_step: frozenset[str], bounds: np.ndarray, epochs: np.ndarray, inclusive: bool,
                     spacing: float | None) -> _Axis:
    """Boundaries made strictly increasing in epoch: a pre-training validation at step 0 and the later one
    of epoch 0 close the same epoch, and the later, which is the epoch's end, is kept; a counter that goes
    back (a restart's overlap, already resolved by the latest write) closes nothing."""
    keep = np.concatenate([epochs[1:] > epochs[:-1], [True]])
    keep &= epochs >= np.maximum.accumulate(epochs)
    return _Axis(per_step, True, steps_per_epoch=spacing if spacing and spacing >= 1 else None,
                 boundaries=bounds[keep], boundary_epochs=epochs[keep], inclusive=inclusive)


def _train_written_first(per_step_rows: pd.DataFrame, closing: pd.DataFrame) -> bool:
    """Whether, at the steps where both exist, the loop wrote its train points before the closing
    (eval or epoch) point: then a train step at a boundary step is the last of the epoch it closes.
    Write order is the record order inside one file and the wall time across files; a tie or no
    shared step says inclusive (the last-train-step layout is the common one)."""
    shared = per_step_rows[per_step_rows["step"].isin(closing["step"])]
    if shared.empty:
        return True
    first_train = shared.sort_values(["wall_time", "record"]).drop_duplicates("step", keep="first").set_index("step")
    close = closing.set_index("step").reindex(first_train.index)
    same_file = (first_train["file"] == close["file"]).to_numpy()
    before = np.where(same_file, first_train["record"].to_numpy() < close["record"].to_numpy(),
                      first_train["wall_time"].to_numpy() <= close["wall_time"].to_numpy())
    return int(before.sum()) * 2 >= len(before)


def _is_epoch_tag(frame: pd.DataFrame) -> pd.Series:
    """Rows of the epoch counter; names are compared once per distinct tag, not once per row."""
    tags = frame["tag"]
    return tags.isin([t for t in tags.unique() if str(t).lower() in EPOCH_TAGS])


def _metrics_named_epoch(frame: pd.DataFrame) -> set[str]:
    """Metrics with a tag whose name says epoch (``train_loss_epoch``), from the distinct tags: one pass
    over the rows whatever the number of tags (a per-metric filter of the frame was quadratic)."""
    named = [t for t in frame["tag"].unique() if "epoch" in str(t).lower()]
    return set(frame.loc[frame["tag"].isin(named), "metric"].astype(str).unique()) if named else set()


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
    if axis.boundaries is not None:
        epochs = axis.epochs_of_points(steps)
    else:
        # epoch indices; 1..N are epochs 0..N-1 when no other file says which epochs there are
        offset = 1 if steps.min() >= 1 and n_epochs_hint == 0 and not (steps == 0).any() else 0
        epochs = steps - offset
    latest: dict[int, tuple[str, int, float, SourceRef]] = {}
    for epoch, value, file, record in zip(epochs.tolist(), group["value"].tolist(),
                                          group["file"].tolist(), group["record"].tolist()):
        if math.isfinite(epoch) and (axis.boundaries is None or 0 <= epoch <= MAX_EPOCH):
            # a later point of the same epoch (a second validation) wins, as a later write of one step does
            latest[int(epoch)] = (metric, int(epoch), float(value), SourceRef(str(file), record=int(record)))
    return EpochValues(list(latest.values()))


def _step_rows(frame: pd.DataFrame, axis: _Axis) -> pd.DataFrame | None:
    """One row per global step that has a per-step train_loss (or, with no per-step loss, an lr)."""
    columns: dict[str, pd.Series] = {}
    sources: list[pd.DataFrame] = []
    metric_codes, metric_names = pd.factorize(frame["metric"])     # a million rows, a few metrics
    for metric in STEP_FRAME_METRICS:
        if metric not in axis.per_step:
            continue
        found = np.flatnonzero(np.asarray(metric_names, dtype=object) == metric)
        part = frame[metric_codes == found[0]] if len(found) else frame.iloc[:0]
        # several tags for one metric (lr-AdamW/pg1 next to lr): the first tag in name order
        part = part[part["tag"] == sorted(part["tag"].unique())[0]]
        part = part.drop_duplicates("step", keep="last").set_index("step")
        columns[metric] = part["value"]
        sources.append(part[["file", "record"]])
    if not columns:
        return None
    table = pd.DataFrame(columns).sort_index()
    if "train_loss" in columns:
        # Rows are the steps whose loss was written: a step with only an LR (its loss record lost, or not
        # logged that step) would read as a NaN loss, and a NaN loss is a divergence.
        table = table.loc[np.sort(columns["train_loss"].index.unique().to_numpy())]
    where = pd.concat(sources)
    where = where[~where.index.duplicated(keep="first")].reindex(table.index)
    step = table.index.to_numpy(dtype=np.int64)
    epoch = axis.epochs_of(step.astype(float))
    epoch[(epoch < 0) | (epoch > MAX_EPOCH)] = math.nan
    per_epoch = axis.steps_per_epoch
    if axis.boundaries is not None:
        # position inside the epoch from its first logged step; its length from the boundaries' spacing
        # (the logged steps of an epoch may be fewer), else from what was logged
        first_of_epoch = pd.Series(step).groupby(epoch).transform("min").to_numpy(dtype=float)
        idx = step - first_of_epoch
        per_epoch_column = (np.full(len(step), float(round(per_epoch))) if per_epoch
                            else pd.Series(step).groupby(epoch).transform("count").to_numpy(dtype=float))
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
