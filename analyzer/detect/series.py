"""Numeric series out of a ``Run``: which NaNs are missing values and which are real non-finite values.

``Run.epochs`` holds NaN both where a metric was never reported (no EMA pass that epoch, a TensorBoard tag
that starts later, a skipped validation) and where timm printed ``nan``. Detectors must not call the first
kind a divergence, so a NaN counts as a *value* only with evidence that the metric was reported:

* an ``Event(kind="nonfinite")`` for that epoch (and, when it names one, that metric), or
* a sibling from the same pass is finite in that row: the other ``eval_*`` columns with the same
  suffix (``""``, ``"_model"``, ``"_ema"``) for an eval metric; any eval column for ``train_loss``
  (summary.csv always writes ``train_loss`` next to the eval columns).

A NaN cell that no source wrote (no ref in ``Run.epoch_refs``: a TensorBoard epoch with eval
values but no train steps, a column that starts later) is missing whatever its siblings say: only a
file can report a ``nan``.

±inf is always a value. A NaN in a step row is a value for ``train_loss`` (the ``Train:`` line was
there and printed ``nan``) when other rows of the same run do have a finite loss; when none has (a log
layout without a loss field) the column is missing. Every other step column's NaN is missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Mapping

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.model import Run

STEP_PREFIX = "step:"
STEP_METRICS = ("train_loss", "lr")      # step columns that get series (and segments)
_EVAL_SUFFIXES = ("_model", "_ema")


@dataclass(frozen=True, slots=True, eq=False)
class MetricSeries:
    """One metric with missing points removed: ``y`` NaN/inf are real non-finite values.

    x: epoch (unit "epoch") or global optimizer-update index (unit "step"), ascending.
    epoch: the epoch of each point (equal to x for epoch series).
    """

    name: str
    unit: Literal["epoch", "step"]
    x: np.ndarray
    y: np.ndarray
    epoch: np.ndarray

    @property
    def finite(self) -> np.ndarray:
        return np.isfinite(self.y)

    def __len__(self) -> int:
        return int(self.y.size)


def epoch_frame(run: Run) -> pd.DataFrame:
    """``run.epochs`` with an int epoch index (sorted, last duplicate wins) and numeric columns only.

    Columns that hold no number at all (text, provenance) are dropped; a float column of NaN only is
    kept, since timm may have printed ``nan`` for it every epoch.
    """
    frame = run.epochs if isinstance(run.epochs, pd.DataFrame) else pd.DataFrame()
    if frame.empty:
        return pd.DataFrame(index=pd.Index([], dtype="int64", name="epoch"))
    index = pd.to_numeric(pd.Series(frame.index, dtype="object"), errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(index)
    numeric = {}
    for column in frame.columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.notna().any() or pd.api.types.is_float_dtype(frame[column].dtype):
            numeric[str(column)] = values.to_numpy(dtype=float)
    out = pd.DataFrame({name: values[keep] for name, values in numeric.items()},
                       index=pd.Index(index[keep].astype("int64"), name="epoch"))
    out = out[~out.index.duplicated(keep="last")]
    return out.sort_index()


def epoch_series(run: Run, frame: pd.DataFrame | None = None) -> dict[str, MetricSeries]:
    """Every numeric epoch column as a ``MetricSeries`` (missing NaNs dropped; see the module docstring)."""
    frame = epoch_frame(run) if frame is None else frame
    flagged = _nonfinite_event_epochs(run)
    epochs = frame.index.to_numpy(dtype=float)
    written = _WrittenCells(run, frame.index)
    out: dict[str, MetricSeries] = {}
    for name in frame.columns:
        y = frame[name].to_numpy(dtype=float)
        reported_nan = (_reported_nan(frame, name, flagged, getattr(run, "trainer", None) is None)
                        & written.column(name))
        keep = np.isfinite(y) | np.isinf(y) | reported_nan
        if keep.any():
            out[name] = MetricSeries(name, "epoch", epochs[keep], y[keep], epochs[keep])
    return out


def _reported_nan(frame: pd.DataFrame, name: str, flagged: Mapping[int, set[str | None]],
                  timm_rows: bool = True) -> np.ndarray:
    """Rows where a NaN in ``name`` is a printed ``nan`` rather than a missing value. ``timm_rows``: the
    run is timm's own (its epoch rows always hold train_loss beside the eval columns); another trainer's
    sparse rows (a validation-only epoch after Lightning's last training epoch) give train_loss no siblings."""
    nan = np.isnan(frame[name].to_numpy(dtype=float))
    if not nan.any():  # nothing to tell apart (most columns): the siblings' evidence would be and-ed with no NaN
        return nan
    siblings = [c for c in _siblings(name, frame.columns) if c != name and (timm_rows or name != "train_loss")]
    evidence = np.zeros(len(frame), dtype=bool)
    if siblings:
        evidence |= np.isfinite(frame[siblings].to_numpy(dtype=float)).any(axis=1)
    if flagged:
        for row, epoch in enumerate(frame.index):
            names = flagged.get(int(epoch))
            if names is not None and (None in names or name in names):
                evidence[row] = True
    return evidence & nan


def _written(run: Run, epochs: pd.Index, name: str) -> np.ndarray:
    """Rows whose ``name`` cell some source wrote (a ref in ``run.epoch_refs``); all True when the run
    carries no refs for the column (a Run built in memory: provenance not tracked)."""
    refs = getattr(run, "epoch_refs", None)
    if not isinstance(refs, pd.DataFrame) or name not in refs.columns or not refs[name].notna().any():
        return np.ones(len(epochs), dtype=bool)
    column = refs[name]
    column = column[~pd.Index(column.index).duplicated(keep="last")]
    keys = pd.to_numeric(pd.Series(column.index, dtype="object"), errors="coerce")
    written = pd.Series(column.notna().to_numpy(), index=keys.to_numpy())
    written = written[written.index.notna()]
    written.index = written.index.astype("int64")
    return written.reindex(epochs, fill_value=False).to_numpy(dtype=bool)


class _WrittenCells:
    """``_written`` for every column of one run: the refs' epoch labels are parsed and matched to ``epochs``
    once, not once per column (that was a third of ``detect``, which the timeline runs on every prefix).
    Refs whose parsed epochs repeat (which ``_written`` cannot reindex) go through ``_written`` itself."""

    def __init__(self, run: Run, epochs: pd.Index):
        self._run = run
        self._epochs = epochs
        refs = getattr(run, "epoch_refs", None)
        self._refs = refs if isinstance(refs, pd.DataFrame) else None
        self._match: tuple[np.ndarray, np.ndarray] | None = None

    def column(self, name: str) -> np.ndarray:
        refs = self._refs
        if refs is None or name not in refs.columns or not refs[name].notna().any():
            return np.ones(len(self._epochs), dtype=bool)
        if self._match is None:
            self._match = self._matched(refs)
        rows, indexer = self._match
        if indexer is None:
            return _written(self._run, self._epochs, name)
        cells = refs[name].notna().to_numpy(dtype=bool)[rows]
        out = np.zeros(len(self._epochs), dtype=bool)
        hit = indexer >= 0
        out[hit] = cells[indexer[hit]]
        return out

    def _matched(self, refs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """(the refs rows ``_written`` keeps: last of a repeated label, a numeric one; for each epoch the
        position among them of its row, -1 for none), by ``_written``'s own steps."""
        last = ~pd.Index(refs.index).duplicated(keep="last")
        keys = pd.to_numeric(pd.Series(refs.index[last], dtype="object"), errors="coerce").to_numpy()
        numeric = ~pd.isna(keys)
        labels = pd.Index(keys[numeric]).astype("int64")
        rows = np.flatnonzero(last)[numeric]
        if not labels.is_unique:
            return rows, None
        return rows, labels.get_indexer(self._epochs)


def _siblings(name: str, columns: pd.Index) -> list[str]:
    if name == "train_loss":
        return [c for c in columns if str(c).startswith("eval_")]
    if not name.startswith("eval_"):
        return []
    suffix = next((s for s in _EVAL_SUFFIXES if name.endswith(s)), "")
    return [
        c for c in columns
        if str(c).startswith("eval_") and next((s for s in _EVAL_SUFFIXES if str(c).endswith(s)), "") == suffix
    ]


def _nonfinite_event_epochs(run: Run) -> dict[int, set[str | None]]:
    """Epoch -> metrics named by ``nonfinite`` events (None: the event names no metric)."""
    flagged: dict[int, set[str | None]] = {}
    for event in getattr(run, "events", ()) or ():
        if getattr(event, "kind", None) != "nonfinite" or event.epoch is None:
            continue
        data = event.data if isinstance(event.data, Mapping) else {}
        metric = data.get("metric")
        flagged.setdefault(int(event.epoch), set()).add(str(metric) if metric else None)
    return flagged


def step_series(run: Run) -> dict[str, MetricSeries]:
    """``step:train_loss`` and ``step:lr`` over the global update index (see the module docstring)."""
    steps = run.steps if isinstance(run.steps, pd.DataFrame) else pd.DataFrame()
    if steps.empty:
        return {}
    x, epoch = _step_positions(steps)
    out: dict[str, MetricSeries] = {}
    for column in STEP_METRICS:
        if column not in steps.columns:
            continue
        y = pd.to_numeric(steps[column], errors="coerce").to_numpy(dtype=float)
        printed_nan = column == "train_loss" and bool(np.isfinite(y).any())
        keep = np.isfinite(x) & (np.isfinite(y) | np.isinf(y) | printed_nan)
        if not keep.any():
            continue
        xs, ys, es = x[keep], y[keep], epoch[keep]
        if xs.size > 1 and np.any(np.diff(xs) < 0):
            order = np.argsort(xs, kind="stable")
            xs, ys, es = xs[order], ys[order], es[order]
        out[STEP_PREFIX + column] = MetricSeries(STEP_PREFIX + column, "step", xs, ys, es)
    return out


def _step_positions(steps: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Global update index of each step row (``update``, else ``epoch * per_epoch + idx``) and its epoch."""
    def column(name: str) -> np.ndarray:
        if name not in steps.columns:
            return np.full(len(steps), math.nan)
        return pd.to_numeric(steps[name], errors="coerce").to_numpy(dtype=float)

    epoch, idx, per_epoch, update = column("epoch"), column("idx"), column("per_epoch"), column("update")
    derived = epoch * per_epoch + idx
    x = np.where(np.isfinite(update), update, derived)
    if not np.isfinite(x).any():  # no position at all: keep the row order
        x = np.arange(len(steps), dtype=float)
    return x, epoch


def lr_at_epoch(frame: pd.DataFrame, steps: pd.DataFrame | None, epoch: int) -> float | None:
    """The LR of an epoch: the epoch ``lr`` column, else the median logged step LR of that epoch."""
    if "lr" in frame.columns and epoch in frame.index:
        value = float(frame.at[epoch, "lr"])
        if math.isfinite(value):
            return value
    if steps is not None and not steps.empty and {"lr", "epoch"} <= set(steps.columns):
        epochs = pd.to_numeric(steps["epoch"], errors="coerce")
        lrs = pd.to_numeric(steps["lr"], errors="coerce")[epochs == epoch]
        lrs = lrs[np.isfinite(lrs)]
        if len(lrs):
            return float(lrs.median())
    return None
