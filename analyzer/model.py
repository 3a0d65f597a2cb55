"""The normalized run: the one interface every stage after ingestion reads.

Data only. Ingest builds these objects; detection, features, rules and renderers read them.

Conventions (written down once, used everywhere):
- ``epoch`` is timm's 0-based epoch index.
- Accuracies are percentages (0-100), as timm prints them.
- ``eval_*`` columns are what timm *reports* as the eval metrics. When timm validated an EMA copy,
  those are the EMA numbers (timm replaces the model's eval with the EMA's in summary.csv,
  checkpoints and ``*** Best metric``). ``eval_*_model`` and ``eval_*_ema`` hold the two
  passes separately when the console log shows both.
- Provenance: every epoch value has a :class:`SourceRef` in ``Run.epoch_refs`` (same shape as
  ``Run.epochs``); step rows carry ``src_file`` and ``src_line`` columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping

import numpy as np

if TYPE_CHECKING:  # the rule loader imports SourceRef; `rules list` must not pay for pandas
    import pandas as pd

if TYPE_CHECKING:  # model.py is the ground floor: the version type is only named here, never imported
    from mnv4_postmortem.analyzer.timm.version import TimmVersion

# Canonical epoch-level columns. Unknown metrics (e.g. TensorBoard tags without an alias)
# keep their own names and are added after these.
EPOCH_COLUMNS: tuple[str, ...] = (
    "train_loss",
    "eval_loss",
    "eval_top1",
    "eval_top5",
    "lr",
    "eval_loss_model",
    "eval_top1_model",
    "eval_top5_model",
    "eval_loss_ema",
    "eval_top1_ema",
    "eval_top5_ema",
)

# Canonical step-level columns (one row per logged ``Train:`` line).
STEP_COLUMNS: tuple[str, ...] = (
    "epoch",          # 0-based epoch
    "idx",            # batch (<= v0.8) or optimizer-update (>= v0.9) index inside the epoch
    "per_epoch",      # N in ``[idx/N]``: batches or updates per epoch
    "update",         # global index: epoch * per_epoch + idx
    "train_loss",     # the current value printed first
    "train_loss_avg", # the running mean in parentheses
    "lr",
    "samples_per_sec",  # corrected for the v1.0.16-1.0.19 updates/s bug (NaN when unknowable)
    "batch_time",
    "data_time",
)

SourceKind = Literal["console_log", "summary_csv", "args_yaml", "tensorboard", "checkpoint", "other",
                     "trainer_log", "trainer_config"]  # the last two: other trainers' files (ingest/formats.py)


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a value came from: a file plus a 1-based line, or a record index / byte offset."""

    path: str
    line: int | None = None
    record: int | None = None
    offset: int | None = None

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.path}:{self.line}"
        if self.record is not None:
            extra = f" @byte {self.offset}" if self.offset is not None else ""
            return f"{self.path}#record {self.record}{extra}"
        if self.offset is not None:
            return f"{self.path}@byte {self.offset}"
        return self.path


@dataclass(frozen=True, slots=True)
class IngestIssue:
    """A warning about input that was skipped, repaired or ambiguous. Never fatal by itself."""

    source: SourceRef
    message: str
    level: Literal["warning", "error"] = "warning"

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


class IngestError(Exception):
    """The project's one error type for unusable input. Always names the file and position."""

    def __init__(self, message: str, source: SourceRef | None = None):
        self.message = message
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


EventKind = Literal[
    "resume",          # a restart: resume messages, a repeated CSV header, a step counter going back
    "truncated",       # a file ends mid-line / mid-record
    "crash",           # a Python traceback or ERROR: line
    "oom",             # CUDA / device out of memory
    "nonfinite",       # nan / inf in a loss or metric
    "best_metric",     # ``*** Best metric``
    "checkpoint",      # ``Current checkpoints`` or a checkpoint file present
    "warning",         # a ``WARNING:`` line from timm or another library
    "skipped_eval",    # ``Skipping eval and checkpointing`` (--val-interval)
]


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    message: str
    source: SourceRef
    epoch: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """One file of the run directory and what ingest made of it."""

    path: str
    kind: SourceKind
    family: str | None = None            # e.g. "timm log layout D (>=1.0.8)", "summary.csv v0.8.2+"
    timm_version: str | None = None      # best guess, e.g. ">=1.0.23"
    metrics: tuple[str, ...] = ()        # canonical metric names this file provides
    epochs: tuple[int, int] | None = None  # first and last epoch covered (inclusive)
    records: int = 0                     # lines / rows / records that yielded data
    notes: tuple[str, ...] = ()          # what the format decided while reading: units, keys kept as is
    # The top-level keys of a settings file that is not timm's train.py arguments ("other config", e.g. another
    # trainer's hparams.yaml): listed by inspect and the coverage statement, never read as timm settings.
    config_keys: tuple[str, ...] = ()


# Where a resolved recipe value came from: timm printed it (log), args.yaml set it (args), timm's default
# filled it (default), or it was computed / read off the curves (inferred).
RECIPE_KINDS = ("log", "args", "default", "inferred")


@dataclass(frozen=True, slots=True)
class Resolved:
    """One recipe value as timm used it, with where it came from and how sure that is."""

    value: Any
    source: str               # human-readable: "the log's 'Scheduled epochs' line (train.log:12)", "args.yaml lr"
    kind: str                 # one of RECIPE_KINDS
    confidence: float = 1.0   # 1.0 when stated; an inference's own confidence otherwise


@dataclass(frozen=True, slots=True)
class Recipe:
    """The run's resolved recipe (``analyzer/timm/recipe.py`` owns it): each value with its source.

    ``updates_by_epoch`` maps epoch -> optimizer updates (key -1 for a single hinted value).
    """

    lr: Resolved | None = None
    global_batch: Resolved | None = None
    world_size: Resolved | None = None
    epochs_scheduled: Resolved | None = None
    updates_per_epoch: Resolved | None = None
    updates_by_epoch: Mapping[int, int] = field(default_factory=dict)
    num_classes: Resolved | None = None


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """timm's arguments as the run used them.

    ``args`` is args.yaml as read (keys as timm spells them). ``values`` is ``args`` with timm's
    defaults filled in for missing keys (``defaulted`` names them). ``effective`` holds values
    timm derived at run time and never wrote to args.yaml (the LR computed from ``lr_base``,
    global batch, world size, num_classes and input size seen in the log; the recipe arithmetic of
    ``timm/recipe.py``: schedule length, LR from ``lr_base``, updates per epoch); ``effective_sources``
    says where each came from. ``timm_version`` is the version whose defaults filled ``values``:
    anything that needs timm's defaults again (a fix's command line) reads them from ``defaults`` /
    ``command_defaults``, resolved for that version once.

    args.yaml is user input: any value may be missing, a string, a list or junk. The typed readers
    (:meth:`number`, :meth:`count`, :meth:`flag`, :meth:`text`) are the one place such a value is
    coerced; they never raise.
    """

    values: Mapping[str, Any]
    args: Mapping[str, Any] = field(default_factory=dict)
    defaulted: frozenset[str] = frozenset()
    effective: Mapping[str, Any] = field(default_factory=dict)
    effective_sources: Mapping[str, str] = field(default_factory=dict)
    source: SourceRef | None = None
    timm_version: "TimmVersion | None" = None
    recipe: Recipe = field(default_factory=Recipe)  # the resolved recipe, typed (timm/recipe.py fills it)
    # timm's argparse defaults in this config's era, resolved once at ingest by ``timm/defaults.py``
    # (``build_config`` / ``with_defaults``, the one reader of the table); every later stage reads them here.
    # ``defaults``: the keys a diagnosis reads (what filled ``values``; the config table compares with them).
    # ``command_defaults``: those plus the settings only a command line needs (what a train.py line leaves out).
    # Both are empty for a config built by hand.
    defaults: Mapping[str, Any] = field(default_factory=dict)
    command_defaults: Mapping[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        """The value timm really used: ``effective`` first, then the (defaulted) args."""
        if name in self.effective and self.effective[name] is not None:
            return self.effective[name]
        value = self.values.get(name, default)
        return default if value is None else value

    def or_default(self, name: str) -> Any:
        """:meth:`get`, else timm's default in the config's era, also for a run without args.yaml (whose
        ``values`` hold no defaults): for the readers that must assume what train.py used (the optimizer
        family of an LR reference, the EMA decay of ``--model-ema``)."""
        return self.get(name, self.command_defaults.get(name))

    def origin(self, name: str) -> str | None:
        """Where the value :meth:`get` returns came from (a file, ``file:line``, or "timm default (not in
        args.yaml)"); None when the run does not know it. The one answer inspect and the coverage give."""
        if name in self.effective and self.effective[name] is not None:
            return self.effective_sources.get(name, "derived at run time")
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if name in self.defaulted:
            return "timm default (not in args.yaml)"
        return self.source.path if self.source else "args.yaml"

    def number(
        self, name: str, default: float | None = None, *, minimum: float | None = None, maximum: float | None = None,
    ) -> float | None:
        """:meth:`get` as a finite float (numeric strings too: YAML reads ``1e-3`` as a string) within
        ``minimum..maximum`` (inclusive); else ``default``."""
        number = as_number(self.get(name))
        if number is None or (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            return default
        return number

    def count(self, name: str, default: int | None = None, *, minimum: int = 0) -> int | None:
        """:meth:`get` as a whole number >= ``minimum`` (``4.0`` counts; ``4.5``, ``True`` do not); else ``default``."""
        number = as_count(self.get(name), minimum=minimum)
        return default if number is None else number

    def flag(self, name: str, default: bool = False) -> bool:
        """:meth:`get` as a switch: booleans, non-zero numbers, or "true"/"yes"/"on"/"1"; missing -> ``default``."""
        value = self.get(name)
        return default if value is None else as_flag(value)

    def text(self, name: str) -> str | None:
        """:meth:`get` as a non-empty string (stripped); None for non-strings and "", "none", "null"."""
        return as_text(self.get(name))


def as_number(value: Any) -> float | None:
    """A finite float, or None (booleans are not numbers here)."""
    if isinstance(value, (bool, np.bool_)) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def as_count(value: Any, *, minimum: int = 0) -> int | None:
    """A whole number >= ``minimum`` (and below 1e15), or None."""
    number = as_number(value)
    if number is None or number < minimum or not number.is_integer() or number > 1e15:
        return None
    return int(number)


def as_flag(value: Any) -> bool:
    """A flag from args.yaml: real booleans and numbers, or "true"/"yes"/"on"/"1"; anything else is False."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        return bool(value) and not math.isnan(float(value))
    return False


def as_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    return None if text.lower() in ("", "none", "null") else text


@dataclass(frozen=True, slots=True, eq=False)
class Run:
    """A normalized timm run."""

    run_dir: Path
    config: TrainConfig
    epochs: pd.DataFrame           # index: epoch (int); columns: EPOCH_COLUMNS present + extras
    epoch_refs: pd.DataFrame       # same index/columns, each cell a SourceRef or None
    steps: pd.DataFrame            # STEP_COLUMNS + src_file, src_line
    events: tuple[Event, ...]
    sources: tuple[SourceInfo, ...]
    issues: tuple[IngestIssue, ...]
    # The run's one timm version (the ingest sets it to ``config.timm_version``). Readers go through
    # ``TimmVersion.parse``, which also accepts the plain text a hand-built Run may carry.
    timm_version: "TimmVersion | str | None" = None
    # The schedule length timm.recipe resolved at ingest (``config.effective["epochs_scheduled"]``).
    epochs_scheduled: int | None = None
    # Per-step scalars beyond the step frame's columns (TensorBoard tags logged every update, such as
    # ``grad_norm`` and ``grad_norm/<group>``): index = global update, one float column per metric,
    # NaN where a metric has no value at that update. Kept apart from ``steps`` so that a missing value
    # here never reads as a printed ``nan`` of a step-frame column.
    step_scalars: pd.DataFrame = field(default_factory=lambda: _empty_frame())
    # The trainer that wrote the run when it is not timm's train.py (``timm/trainers.py`` key: "deit",
    # "lightning", "hf_trainer", ...); None for timm's own formats.
    trainer: str | None = None

    @property
    def recipe(self) -> Recipe:
        """The resolved recipe (one owner: ``timm/recipe.py``, stored on the config it was resolved from)."""
        return self.config.recipe

    @property
    def n_epochs(self) -> int:
        return int(len(self.epochs))

    def epoch_span(self) -> dict[str, int | None]:
        """count, first, last and scheduled epochs: what every summary of a run starts with."""
        index = self.epochs.index
        return {
            "count": self.n_epochs,
            "first": int(index.min()) if self.n_epochs else None,
            "last": int(index.max()) if self.n_epochs else None,
            "scheduled": self.epochs_scheduled,
        }

    def series(self, name: str) -> pd.Series:
        """An epoch-level metric with its NaNs kept; an empty Series when absent."""
        if name in self.epochs.columns:
            return self.epochs[name]
        import pandas as pd

        return pd.Series(dtype="float64", name=name)


def _empty_frame() -> "pd.DataFrame":
    import pandas as pd  # lazily: the light commands import this module without pandas

    return pd.DataFrame()
