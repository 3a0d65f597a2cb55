"""Merge the per-format parser results into one normalized Run.

Precedence when sources overlap (documented, and a disagreement is reported as an issue):
- ``summary.csv`` is timm's own per-epoch record: it wins for ``train_loss``, ``eval_*`` and ``lr``.
- The console log is the only place with the model's *and* the EMA's eval (``eval_*_model`` /
  ``eval_*_ema``), per-step values, the LR computed from ``lr_base``, and start-up messages.
  Without a summary.csv it provides the epoch frame too.
- TensorBoard scalars fill metrics that neither of the above has.
- ``args.yaml`` gives the configuration; values timm derived at run time (effective LR,
  input size, world size) come from the log and are recorded in ``TrainConfig.effective``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import cache
from itertools import repeat
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.ingest.contribution import Contribution, EpochColumn, EpochColumns, EpochContext
from mnv4_postmortem.analyzer.ingest.discover import Discovery, FoundFile, discover
from mnv4_postmortem.analyzer.ingest.formats import Combined, by_name
from mnv4_postmortem.analyzer.model import (
    EPOCH_COLUMNS,
    STEP_COLUMNS,
    Event,
    IngestError,
    IngestIssue,
    Run,
    SourceInfo,
    SourceRef,
    TrainConfig,
)
from mnv4_postmortem.analyzer.timm.defaults import build_config, with_defaults
from mnv4_postmortem.analyzer.timm.recipe import RecipeFacts, resolve_recipe
from mnv4_postmortem.analyzer.timm.trainers import run_trainer
from mnv4_postmortem.analyzer.timm.version import TimmVersion, narrowest, version_from_args

# Two sources "agree" when they print the same number at their own precision (the log shows 3-4 decimals).
AGREEMENT_TOLERANCE = 0.02

# Which formats provide each fact, most trusted first. Formats in one tuple share a rank (their files
# count in discovery order). Epoch values: the first rank puts, later ranks fill gaps and are checked
# where their EpochValues ask for it; a single-valued fact (args, timm version) comes from the first
# contribution that has it; the scheduled epoch count from the last log that printed it.
PRECEDENCE: Mapping[str, tuple[tuple[str, ...], ...]] = {
    "epochs": (("summary_csv",), ("console_log",), ("tensorboard",)),
    "steps": (("console_log",), ("tensorboard",)),
    "args": (("args_yaml", "wandb_config"),),
    "effective": (("console_log",),),
    "scheduled_epochs": (("console_log",),),
    "timm_version": (("console_log",), ("summary_csv",)),
    "events": (("console_log",), ("summary_csv",)),
    "sources": (("console_log",), ("summary_csv",), ("args_yaml", "wandb_config"), ("tensorboard",)),
}
# Facts only the named formats give.
ONLY_NAMED: frozenset[str] = frozenset({"timm_version"})
# Formats of which a run has one file: the one with the most records is merged, the others reported.
ONE_PER_RUN: frozenset[str] = frozenset({"summary_csv"})


def load_run(path: Path | str, *, tb_aliases: Mapping[str, str] | None = None) -> Run:
    """Read a run directory (or a single file) into a normalized Run.

    Raises IngestError when nothing usable is found; everything else becomes ``Run.issues``.
    """
    run_dir = Path(path)
    discovery = discover(run_dir)
    issues = list(discovery.issues)
    contributions = _parse_all(discovery, {"tb_aliases": tb_aliases}, issues)
    return merge_contributions(run_dir, contributions, issues, checkpoints=discovery.of_kind("checkpoint"),
                               others=[f for f in discovery.files if f.format is None])


# --------------------------------------------------------------------------------------------------- parsing


def _parse_all(discovery: Discovery, options: Mapping[str, object], issues: list[IngestIssue]) -> list[Contribution]:
    """One Contribution per file (and one per combined format), in discovery order; files of a combined
    format (event files) are read after the others, as one."""
    contributions: list[Contribution] = []
    parts: dict[str, list[Contribution]] = {}
    claimed = [f for f in discovery.files if f.format is not None]
    # isinstance against a runtime Protocol inspects its members each time: once per format is enough
    combined = {name: isinstance(by_name(name), Combined) for name in {f.format for f in claimed}}
    for found in sorted(claimed, key=lambda f: combined[f.format]):
        fmt = by_name(found.format)
        try:
            contribution = fmt.parse(found.path, found.rel)
        except IngestError as exc:
            # One unusable file never stops the others from being read.
            issues.append(IngestIssue(exc.source or SourceRef(found.rel), exc.message, "error"))
            continue
        if combined[found.format]:
            parts.setdefault(fmt.name, []).append(contribution)
        else:
            issues.extend(contribution.issues)
            contributions.append(contribution)
    for name, group in parts.items():
        fmt = by_name(name)
        try:
            combined = fmt.combine(group, options)  # type: ignore[attr-defined]
        except IngestError as exc:
            issues.append(IngestIssue(exc.source or SourceRef(group[0].sources[0].path if group[0].sources else name),
                                      exc.message, "error"))
            continue
        issues.extend(combined.issues)
        contributions.append(combined)
    return contributions


# --------------------------------------------------------------------------------------------------- merging


def merge_contributions(
    run_dir: Path,
    contributions: Sequence[Contribution],
    issues: list[IngestIssue],
    *,
    checkpoints: Sequence[FoundFile] = (),
    others: Sequence[FoundFile] = (),
) -> Run:
    """Fold the contributions into one Run by :data:`PRECEDENCE`. ``issues`` already holds what was met
    while reading; merge issues are appended to it."""
    merged = _one_per_run(contributions, issues)
    table = _EpochTable(issues)
    for contribution in _in_order([c for c in merged if c.resolve is None], "epochs"):
        _fold_epochs(table, contribution)
    # then the contributions whose step axis needs the epochs established so far (TensorBoard)
    context = EpochContext(n_epochs=table.n_epochs())
    done = {id(c): c.resolve(context) for c in contributions if c.resolve is not None}
    for contribution in _in_order([done[id(c)] for c in merged if id(c) in done], "epochs"):
        _fold_epochs(table, contribution)
    resolved = [done.get(id(c), c) for c in merged]
    every = [done.get(id(c), c) for c in contributions]
    epochs, refs = table.frames()
    steps = _step_frame(_in_order(resolved, "steps"))
    has_args = any(c.args is not None for c in resolved)
    if epochs.empty and steps.empty and not has_args and not _read_cleanly(resolved, issues):
        where = SourceRef(str(run_dir))
        detail = "; ".join(str(i) for i in issues[:5])
        raise IngestError(
            "nothing usable: no timm console log, summary.csv, args.yaml or TensorBoard scalars, and no other "
            "trainer's log (DeiT log.txt, Lightning metrics.csv, HF trainer_state.json, W&B, mmpretrain) were found"
            + (f" ({detail})" if detail else ""),
            where,
        )
    # One timm version for the whole run: the defaults, the checks and the fix commands all read it.
    config = _effective_config(resolved, _timm_version(resolved))
    # Accuracy as percent or fraction of 1, per series: every later stage reads percent (ingest/units.py).
    epochs, config = _accuracy_in_percent(epochs, config)
    # timm's recipe arithmetic (LR from lr_base, global batch, schedule length, num_classes), once.
    config = resolve_recipe(config, _recipe_facts(resolved, epochs, steps))
    return Run(
        run_dir=run_dir,
        config=config,
        epochs=epochs,
        epoch_refs=refs,
        steps=steps,
        events=tuple(_events(every, checkpoints)),
        sources=tuple(_source_infos(every, others)),
        issues=tuple(issues),
        timm_version=config.timm_version,
        epochs_scheduled=config.effective.get("epochs_scheduled"),
        step_scalars=_step_scalars(resolved),
        trainer=run_trainer((c.trainer, c.format) for c in every),
    )


def _accuracy_in_percent(epochs: pd.DataFrame, config: TrainConfig) -> tuple[pd.DataFrame, TrainConfig]:
    """The epoch frame in percent, and the unit decided for each accuracy series stated in the config's
    ``effective`` (``accuracy_units``) with its reasons (``effective_sources``), for inspect and evidence."""
    from mnv4_postmortem.analyzer.ingest.units import normalize_accuracy, units_summary

    stated = config.args.get("num_classes") if isinstance(config.args, Mapping) else None
    classes = int(stated) if isinstance(stated, (int, float)) and not isinstance(stated, bool) and stated >= 2 else None
    epochs, decisions = normalize_accuracy(epochs, classes)
    if not decisions:
        return epochs, config
    effective = dict(config.effective, accuracy_units={c: d.unit for c, d in decisions.items()})
    sources = dict(config.effective_sources, accuracy_units=units_summary(decisions))
    return epochs, replace(config, effective=effective, effective_sources=sources)


def _read_cleanly(contributions: Sequence[Contribution], issues: Sequence[IngestIssue]) -> bool:
    """Whether some file was recognised and read without a complaint (a log header, an event file holding only
    a graph, another trainer's settings): then the run was read, and has nothing to judge (coverage.py),
    which is not the same as unusable input. A file any issue names does not count, except a settings file
    whose keys were listed as other config (an args.yaml that is not timm's is read, and warned about by name)."""
    named = {issue.source.path for issue in issues}
    return any(info.path not in named or info.config_keys for c in contributions for info in c.sources)


def _in_order(contributions: Sequence[Contribution], fact: str) -> list[Contribution]:
    """The contributions that may provide ``fact``, most trusted first (stable within a rank). A format the
    table does not name ranks last (so a new format needs no entry here), except for the facts in
    :data:`ONLY_NAMED`."""
    ranks = PRECEDENCE[fact]
    rank = {name: position for position, names in enumerate(ranks) for name in names}
    if fact in ONLY_NAMED:
        chosen = [c for c in contributions if c.format in rank]
    else:
        chosen = list(contributions)
    return sorted(chosen, key=lambda c: rank.get(c.format, len(ranks)))


def _first(contributions: Sequence[Contribution], fact: str, get) -> Any:
    for contribution in _in_order(contributions, fact):
        value = get(contribution)
        if value:
            return value
    return None


def _one_per_run(contributions: Sequence[Contribution], issues: list[IngestIssue]) -> list[Contribution]:
    """Drop all but the richest file of each :data:`ONE_PER_RUN` format (the others belong to other runs)."""
    kept = [c for c in contributions if c.format not in ONE_PER_RUN]
    for name in sorted(ONE_PER_RUN):
        group = [c for c in contributions if c.format == name]
        if not group:
            continue
        ranked = sorted(group, key=lambda c: c.records, reverse=True)
        for other in ranked[1:]:
            issues.append(IngestIssue(SourceRef(other.sources[0].path),
                                      f"another summary.csv ({ranked[0].sources[0].path}) has more epochs; this one is ignored"))
        kept.append(ranked[0])
    order = {id(c): i for i, c in enumerate(contributions)}
    return sorted(kept, key=lambda c: order[id(c)])


def _fold_epochs(table: "_EpochTable", contribution: Contribution) -> None:
    earlier_columns = table.columns_of_other_formats(contribution.format)
    table.current_format = contribution.format
    for values in contribution.epochs:
        if values.tolerance is None:  # plain puts: column by column, in bulk (a 1,000-epoch log is 10,000 points)
            for column, points in _by_column(values.points).items():
                if not (values.only_new_column and column in earlier_columns):
                    table.put_many(column, points, overwrite=values.overwrite)
            for bulk in values.columns:
                if not (values.only_new_column and bulk.column in earlier_columns):
                    table.put_column(bulk, overwrite=values.overwrite)
            if values.arrays is not None:   # array columns: kept as arrays while nothing else writes there
                for column in values.arrays.values:
                    if not (values.only_new_column and column in earlier_columns):
                        table.put_columns(column, values.arrays, overwrite=values.overwrite)
            continue
        for column, epoch, value, ref in values.all_points():
            if values.only_new_column and column in earlier_columns:
                continue
            table.fill_or_check(column, epoch, value, ref, values.tolerance)


def _by_column(points) -> dict[str, list[tuple[int, float, SourceRef]]]:
    out: dict[str, list[tuple[int, float, SourceRef]]] = {}
    for column, epoch, value, ref in points:
        out.setdefault(column, []).append((epoch, value, ref))
    return out


def _effective_config(contributions: Sequence[Contribution], version: TimmVersion | None) -> TrainConfig:
    """The configuration timm ran with: the args as written, timm's defaults for the rest, and what the
    log showed it derived at run time (``effective``, each with its source)."""
    args: Mapping[str, Any] | None = None
    source = None
    for contribution in _in_order(contributions, "args"):
        if contribution.args is not None:
            args, source = contribution.args, contribution.args_source
            break
    if args is None:
        # Without args.yaml we do not know the recipe (nor that timm wrote the run): no defaults are
        # invented; only what the log itself shows ends up in ``effective``.
        base = with_defaults(TrainConfig(values={}, timm_version=version))
    elif run_trainer((c.trainer, c.format) for c in contributions) is not None:
        # Another trainer's settings (DeiT main.py, Lightning hparams, HF TrainingArguments, an mm config):
        # timm train.py's defaults are not that trainer's, so none are filled in.
        base = with_defaults(TrainConfig(values=dict(args), args=dict(args), source=source, timm_version=version))
    else:
        base = build_config(args, source, version)
    effective, sources = dict(base.effective), dict(base.effective_sources)
    logs = _in_order(contributions, "effective")
    for contribution in logs:
        for item in contribution.effective:
            if item.key not in effective or effective[item.key] is None:
                effective[item.key], sources[item.key] = item.value, item.source
    if "world_size" not in effective and args is not None:
        _world_size_from_throughput(logs, base.values, effective, sources)
    return replace(base, effective=effective, effective_sources=sources)


def _world_size_from_throughput(logs: Sequence[Contribution], values: Mapping[str, Any], effective: dict, sources: dict) -> None:
    """timm prints global samples/s = batch x world size / step time, so their product reveals the world size
    when the log has no "Training in distributed mode" line (e.g. it was cut or re-formatted)."""
    batch = values.get("batch_size")
    accum = values.get("grad_accum_steps") or 1
    if not isinstance(batch, (int, float)) or batch <= 0:
        return
    for log in logs:
        samples = log.samples_per_step
        if samples is None:
            continue
        world = samples / (float(batch) * float(accum))
        if world >= 1.5 and abs(world - round(world)) < 0.1:
            effective["world_size"] = int(round(world))
            sources["world_size"] = f"{log.sources[0].path}: samples/s x step time = {samples:.0f} samples per step = batch_size {batch} x {round(world)} processes"
            return


class _EpochTable:
    """Per-epoch values being merged from several sources, each with the SourceRef it came from."""

    def __init__(self, issues: list[IngestIssue]):
        self.values: dict[str, dict[int, float]] = {}
        self.refs: dict[str, dict[int, SourceRef]] = {}
        self.issues = issues
        self.writers: dict[str, set[str]] = {}   # column -> formats that put values in it
        self.current_format = ""
        # A column one source handed over in bulk, kept as it came until another source meets it (then it
        # becomes a dict like the others): most columns have one source, and the frame is built from it directly.
        self.bulk: dict[str, EpochColumn] = {}
        # Columns of an EpochColumns (a file of very many epochs), likewise kept as arrays: column -> (its
        # file's arrays, which of their epochs the column has); the refs stay line numbers (line_refs.py).
        self.arrays: dict[str, tuple[EpochColumns, np.ndarray]] = {}

    def put_columns(self, column: str, columns: EpochColumns, *, overwrite: bool = False) -> None:
        """:meth:`put_many` for one column of an :class:`EpochColumns` (same result)."""
        if self._holds(column):
            one = EpochColumns(columns.path, columns.epochs, columns.lines, {column: columns.values[column]},
                               {column: columns.kept[column]})
            self.put_many(column, [(e, v, r) for _c, e, v, r in one.points()], overwrite=overwrite)
            return
        self.writers.setdefault(column, set()).add(self.current_format)
        self.arrays[column] = (columns, columns.kept[column])

    def _holds(self, column: str) -> bool:
        """Whether a source wrote the column already, in any of the three forms the table keeps."""
        return column in self.values or column in self.bulk or column in self.arrays

    def _materialize(self, column: str) -> None:
        held = self.arrays.pop(column, None)
        if held is not None:
            columns, keep = held
            epochs, lines = columns.epochs[keep].tolist(), columns.lines[keep].tolist()
            self.values[column] = dict(zip(epochs, columns.values[column][keep].tolist()))
            self.refs[column] = {e: SourceRef(columns.path, line=line or None) for e, line in zip(epochs, lines)}
        bulk = self.bulk.pop(column, None)
        if bulk is not None:
            self.values[column] = dict(zip(bulk.epochs, bulk.values))
            self.refs[column] = dict(zip(bulk.epochs, bulk.refs))

    def columns_of_other_formats(self, fmt: str) -> set[str]:
        return {column for column, formats in self.writers.items() if formats - {fmt}}

    def put(self, column: str, epoch: int, value: float, ref: SourceRef, *, overwrite: bool = False) -> None:
        """Set a value unless one is there already (``overwrite`` for pass-specific log columns)."""
        self._materialize(column)
        known = self.values.setdefault(column, {})
        self.writers.setdefault(column, set()).add(self.current_format)
        if overwrite or epoch not in known:
            known[epoch] = value
            self.refs.setdefault(column, {})[epoch] = ref

    def put_many(self, column: str, points, *, overwrite: bool = False) -> None:
        """:meth:`put` for many ``(epoch, value, ref)`` points of one column (same result, in source order)."""
        self._materialize(column)
        known = self.values.setdefault(column, {})
        refs = self.refs.setdefault(column, {})
        self.writers.setdefault(column, set()).add(self.current_format)
        if overwrite or not known:
            known.update((epoch, value) for epoch, value, _ in points)
            refs.update((epoch, ref) for epoch, _, ref in points)
            if not overwrite and len(known) < len(points):  # repeated epochs: the first one stays, as put() keeps it
                for epoch, value, ref in reversed(points):
                    known[epoch], refs[epoch] = value, ref
            return
        for epoch, value, ref in points:
            if epoch not in known:
                known[epoch] = value
                refs[epoch] = ref

    def put_column(self, bulk: EpochColumn, *, overwrite: bool = False) -> None:
        """:meth:`put_many` for a column handed over in bulk (same result, without a tuple per point)."""
        if len(set(bulk.epochs)) < len(bulk.epochs):  # repeated epochs: put_many knows which one stays
            self.put_many(bulk.column, list(zip(bulk.epochs, bulk.values, bulk.refs)), overwrite=overwrite)
            return
        if not self._holds(bulk.column):  # its first source
            self.bulk[bulk.column] = bulk
            self.writers.setdefault(bulk.column, set()).add(self.current_format)
            return
        self._materialize(bulk.column)
        known = self.values.setdefault(bulk.column, {})
        refs = self.refs.setdefault(bulk.column, {})
        self.writers.setdefault(bulk.column, set()).add(self.current_format)
        if overwrite or not known:
            known.update(zip(bulk.epochs, bulk.values))
            refs.update(zip(bulk.epochs, bulk.refs))
            return
        for epoch, value, ref in zip(bulk.epochs, bulk.values, bulk.refs):
            if epoch not in known:
                known[epoch] = value
                refs[epoch] = ref

    def fill_or_check(self, column: str, epoch: int, value: float, ref: SourceRef,
                      tolerance: float = AGREEMENT_TOLERANCE) -> None:
        """Fill a gap, or compare with the documented source (summary.csv, put first) and warn on disagreement."""
        self._materialize(column)
        existing = self.values.get(column, {}).get(epoch)
        if existing is None:
            self.put(column, epoch, value, ref)
            return
        if math.isfinite(existing) and math.isfinite(value) and abs(existing - value) > tolerance * max(1.0, abs(existing)):
            kept = self.refs[column][epoch]
            self.issues.append(IngestIssue(
                ref,
                f"{column} for epoch {epoch} is {value:g} here but {existing:g} in {kept}; "
                f"keeping {kept.path} (timm's own per-epoch record)",
            ))

    def n_epochs(self) -> int:
        if self.arrays and not self.values and not self.bulk and (union := self._array_union()) is not None:
            return int(union.sum())
        return len(set().union(*self.values.values(), *(b.epochs for b in self.bulk.values()),
                               *(c.epochs[keep].tolist() for c, keep in self.arrays.values())))

    def _over(self, column: str, epochs: list) -> tuple[list, list]:
        """The column's values and refs over ``epochs`` (sorted), NaN where it has none."""
        bulk = self.bulk.get(column)
        if bulk is not None and len(bulk.epochs) == len(epochs) and list(bulk.epochs) == epochs:
            return list(bulk.values), list(bulk.refs)   # it covers every epoch, in order: as it came
        if bulk is not None:
            known, refs = dict(zip(bulk.epochs, bulk.values)), dict(zip(bulk.epochs, bulk.refs))
        else:
            known, refs = self.values[column], self.refs.get(column, {})
        missing = repeat(math.nan)
        return list(map(known.get, epochs, missing)), list(map(refs.get, epochs, missing))

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self.arrays and not self.values and not self.bulk:
            return self._array_frames()
        for column in list(self.arrays):
            self._materialize(column)
        present = self.values.keys() | self.bulk.keys()
        if not present:
            empty = pd.DataFrame(index=pd.Index([], name="epoch", dtype="int64"))
            return empty, empty.copy()
        ordered = [c for c in EPOCH_COLUMNS if c in present] + sorted(c for c in present if c not in EPOCH_COLUMNS)
        # Every column over the sorted union of epochs, a missing cell NaN (as a frame of aligned Series would be),
        # built from the dicts directly: a Series per column costs more than the lookups.
        epochs = sorted(set().union(*self.values.values(), *(b.epochs for b in self.bulk.values())))
        index = pd.Index(np.array(epochs), name="epoch") if epochs else pd.Index([], name="epoch", dtype="object")
        values = np.empty((len(ordered), len(epochs)), dtype="float64")
        refs = np.empty((len(ordered), len(epochs)), dtype="object")
        for row, c in enumerate(ordered):
            values[row, :], refs[row, :] = self._over(c, epochs)
        return (pd.DataFrame(values.T, index=index, columns=ordered),
                pd.DataFrame(refs.T, index=index, columns=ordered))


    def _array_union(self) -> np.ndarray | None:
        """Which epochs of their one file the array columns hold together (None: several files)."""
        if len({id(held) for held, _ in self.arrays.values()}) != 1:
            return None
        return np.logical_or.reduce([keep for _, keep in self.arrays.values()])

    def _array_frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """:meth:`frames` when every column is an array column: the same frames, the refs as line-ref
        columns (see line_refs.py) instead of one SourceRef object per cell."""
        from mnv4_postmortem.analyzer.ingest.line_refs import LineRefArray

        ordered = [c for c in EPOCH_COLUMNS if c in self.arrays] + sorted(c for c in self.arrays if c not in EPOCH_COLUMNS)
        union = self._array_union()
        if union is None:   # columns of several files
            index = np.unique(np.concatenate([held.epochs[keep] for held, keep in self.arrays.values()]))
        else:
            index = next(iter(self.arrays.values()))[0].epochs[union]
            if len(index) > 1 and (np.diff(index) <= 0).any():
                index = np.unique(index)
        values, refs = {}, {}
        one_file = np.zeros(len(index), np.int32)
        for column in ordered:
            held, keep = self.arrays[column]
            if len(keep) == len(index) and keep.all():   # every epoch: the file's arrays as they are, shared
                values[column] = held.values[column]
                refs[column] = LineRefArray((held.path,), one_file, held.lines)
                continue
            epochs, column_values, lines = held.epochs[keep], held.values[column][keep], held.lines[keep]
            at = np.searchsorted(index, epochs)
            full = np.full(len(index), np.nan)
            full[at] = column_values
            code = np.full(len(index), -1, np.int32)
            code[at] = 0
            line = np.zeros(len(index), np.int64)
            line[at] = lines
            values[column] = full
            refs[column] = LineRefArray((held.path,), code, line)
        epoch_index = pd.Index(index, dtype="int64", name="epoch")
        return pd.DataFrame(values, index=epoch_index, copy=False), pd.DataFrame(refs, index=epoch_index.copy(), copy=False)


_NO_STEP_SCALARS = pd.DataFrame()


def _step_scalars(contributions: Sequence[Contribution]) -> pd.DataFrame:
    frames = [c.step_scalars for c in contributions if c.step_scalars is not None and len(c.step_scalars)]
    if not frames:
        return _NO_STEP_SCALARS.copy()
    wide = pd.concat(frames, axis=1)
    return wide.T.groupby(level=0).last().T.sort_index() if wide.columns.duplicated().any() else wide.sort_index()


@cache
def _empty_step_frame() -> pd.DataFrame:
    """The step frame of a run without steps (built once: a frame of empty Series costs more than a copy)."""
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in (*STEP_COLUMNS, "segment", "src_line")}).assign(
        src_file=pd.Series(dtype="object")
    )


def _step_frame(contributions: Sequence[Contribution]) -> pd.DataFrame:
    frames = [c.steps for c in contributions if c.steps is not None and len(c.steps)]
    if not frames:
        return _empty_step_frame().copy()
    steps = pd.concat(frames, ignore_index=True)
    steps["src_file"] = steps["src_file"].astype("category")
    return steps


def _events(contributions: Sequence[Contribution], checkpoints: Sequence[FoundFile]) -> list[Event]:
    events: list[Event] = []
    for contribution in _in_order(contributions, "events"):
        events.extend(contribution.events)
    for found in checkpoints:
        events.append(Event("checkpoint", f"checkpoint file present: {found.rel}", SourceRef(found.rel)))
    return events


def _source_infos(contributions: Sequence[Contribution], others: Sequence[FoundFile]) -> list[SourceInfo]:
    infos = [info for contribution in _in_order(contributions, "sources") for info in contribution.sources]
    infos += [SourceInfo(found.rel, found.kind) for found in others]
    return infos


def _timm_version(contributions: Sequence[Contribution]) -> TimmVersion | None:
    """The run's one timm version: the console log's reading when it has one (its messages and number
    formats are the best evidence); else what args.yaml's keys and summary.csv's columns allow together."""
    logged = [TimmVersion.parse(c.timm_version) for c in contributions if c.format == "console_log"]
    for version in logged:
        if version is not None:
            return version
    args = next((c.args for c in _in_order(contributions, "args") if c.args is not None), None)
    if run_trainer((c.trainer, c.format) for c in contributions) is not None:
        args = None  # another trainer's settings say nothing about a timm version
    from_args = version_from_args(args) if args is not None else None
    from_csv = [TimmVersion.parse(c.timm_version) for c in _in_order(contributions, "timm_version")]
    return narrowest([from_args, *from_csv])


def step_counts(steps: pd.DataFrame) -> dict[str, Any]:
    """The step frame's epoch and ``N`` columns as arrays, for timm.recipe (which reads no pandas)."""
    if not isinstance(steps, pd.DataFrame) or steps.empty or not {"epoch", "per_epoch"} <= set(steps.columns):
        return {}
    return {
        "step_epoch": pd.to_numeric(steps["epoch"], errors="coerce").to_numpy(dtype="float64"),
        "step_per_epoch": pd.to_numeric(steps["per_epoch"], errors="coerce").to_numpy(dtype="float64"),
    }


def _recipe_facts(contributions: Sequence[Contribution], epochs: pd.DataFrame, steps: pd.DataFrame) -> RecipeFacts:
    """What the files say about the recipe: the last log's ``Scheduled epochs`` line, the reported
    accuracies, and the ``[i/N]`` of the Train: lines."""
    scheduled, ref = None, None
    for contribution in reversed(_in_order(contributions, "scheduled_epochs")):
        if contribution.scheduled_epochs is not None:
            scheduled, ref = contribution.scheduled_epochs
            break
    top1 = epochs["eval_top1"].to_numpy(dtype="float64") if "eval_top1" in epochs.columns else None
    top5 = epochs["eval_top5"].to_numpy(dtype="float64") if "eval_top5" in epochs.columns else None
    train_loss = epochs["train_loss"].to_numpy(dtype="float64") if "train_loss" in epochs.columns else None
    eval_loss = epochs["eval_loss"].to_numpy(dtype="float64") if "eval_loss" in epochs.columns else None
    return RecipeFacts(scheduled_epochs=scheduled, scheduled_ref=ref, eval_top1=top1, eval_top5=top5,
                       train_loss=train_loss, eval_loss=eval_loss, epochs=epochs.index.to_numpy(),
                       **step_counts(steps))
