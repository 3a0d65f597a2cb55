"""What one input file gives the run: the neutral record every format's parser returns.

A :class:`Contribution` says nothing about which format wrote it beyond its ``format`` name; the
merge (``merge.py``) folds contributions by its precedence table, so a new format only has to fill
the fields it knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from mnv4_postmortem.analyzer.model import Event, IngestIssue, SourceInfo, SourceRef


@dataclass(frozen=True, slots=True, eq=False)
class EpochColumn:
    """One column's epoch values in bulk: ``epochs``, ``values`` and ``refs`` of equal length, in source order.
    A format that reads whole columns (JSON lines, a CSV) hands them over as they are, without one tuple per
    point; the merge treats them as the ``(column, epoch, value, ref)`` points they stand for."""

    column: str
    epochs: Sequence[int]
    values: Sequence[float]
    refs: Sequence[SourceRef]


@dataclass(frozen=True, slots=True, eq=False)
class EpochValues:
    """Epoch-level values from one source, as ``(column, epoch, value, ref)`` points in the source's
    own order (so that the issues a disagreement raises come in that order too).

    How a point meets a value of the same column and epoch already in the epoch table (from a format
    earlier in the precedence order, or an earlier file of the same format):

    - by default it only fills a gap;
    - ``tolerance`` set: it fills a gap, and where both exist and differ by more than ``tolerance``
      (relative) an issue says so and the earlier value is kept;
    - ``overwrite``: it replaces what an earlier file wrote (the latest validation pass wins);
    - ``only_new_column``: it is dropped when a format earlier in the precedence order has the column.
    """

    points: Sequence[tuple[str, int, float, SourceRef]] = ()
    tolerance: float | None = None
    overwrite: bool = False
    only_new_column: bool = False
    columns: Sequence[EpochColumn] = ()   # more points, column by column (after ``points``)

    def all_points(self) -> list[tuple[str, int, float, SourceRef]]:
        """``points`` and the points ``columns`` stand for, in that order."""
        return [*self.points, *((c.column, e, v, r) for c in self.columns for e, v, r in zip(c.epochs, c.values, c.refs))]


@dataclass(frozen=True, slots=True)
class EpochContext:
    """What the other formats established before a deferred contribution is resolved."""

    n_epochs: int                   # distinct epochs in the epoch table so far


@dataclass(frozen=True, slots=True)
class Effective:
    """A value timm derived at run time and printed (never in args.yaml), and where it was seen."""

    key: str
    value: Any
    source: str


@dataclass(frozen=True, slots=True, eq=False)
class Contribution:
    """Everything one input file provides. Every field is optional but ``format`` and ``sources``.

    ``epochs``: epoch-level columns. ``resolve``: set for a format whose step axis is only
    understood against the epochs the other sources established (TensorBoard): the merge calls it
    once those are folded and uses the Contribution it returns instead. ``steps``: rows of the step frame (``model.STEP_COLUMNS`` + ``segment``, ``src_line``,
    ``src_file``). ``args``: train.py arguments as written (args.yaml, an excerpt's command line).
    ``effective``: run-time values timm printed. ``samples_per_step``: median of samples/s x step
    time (reveals the world size). ``records``: how many epochs this file has (picks one file when a
    format allows only one per run). ``payload``: the format's own parsed object, read only by that
    format's ``combine`` (several event files of one run are one set of scalars).
    """

    format: str
    sources: tuple[SourceInfo, ...]
    epochs: tuple[EpochValues, ...] = ()
    resolve: Callable[[EpochContext], Contribution] | None = None
    steps: pd.DataFrame | None = None
    args: Mapping[str, Any] | None = None
    args_source: SourceRef | None = None
    effective: tuple[Effective, ...] = ()
    scheduled_epochs: tuple[int, str] | None = None
    samples_per_step: float | None = None
    timm_version: str | None = None
    records: int = 0
    events: tuple[Event, ...] = ()
    issues: tuple[IngestIssue, ...] = ()
    payload: Any = None
    step_scalars: pd.DataFrame | None = None  # per-step metrics beyond the step frame (Run.step_scalars)
    trainer: str | None = None      # the trainer this file shows wrote the run (timm/trainers.py key)
