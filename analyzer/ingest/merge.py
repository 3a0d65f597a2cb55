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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.ingest.args_yaml import ArgsYaml, build_config, parse_args_yaml, parse_wandb_config
from mnv4_postmortem.analyzer.ingest.console_log import ConsoleLog, parse_console_log
from mnv4_postmortem.analyzer.ingest.discover import Discovery, FoundFile, discover
from mnv4_postmortem.analyzer.ingest.summary_csv import SummaryCsv, parse_summary_csv
from mnv4_postmortem.analyzer.ingest.tensorboard import TensorBoardScalars, read_tensorboard
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
from mnv4_postmortem.analyzer.timm.recipe import RecipeFacts, resolve_recipe
from mnv4_postmortem.analyzer.timm.version import TimmVersion, narrowest, version_from_args

EVAL_METRICS = ("eval_loss", "eval_top1", "eval_top5")
# Two sources "agree" when they print the same number at their own precision (the log shows 3-4 decimals).
AGREEMENT_TOLERANCE = 0.02


@dataclass
class _Parsed:
    """Everything the parsers produced, before merging."""

    discovery: Discovery
    logs: list[tuple[FoundFile, ConsoleLog]] = field(default_factory=list)
    csvs: list[tuple[FoundFile, SummaryCsv]] = field(default_factory=list)
    args: list[tuple[FoundFile, ArgsYaml]] = field(default_factory=list)
    tensorboard: TensorBoardScalars | None = None
    issues: list[IngestIssue] = field(default_factory=list)


def load_run(path: Path | str, *, tb_aliases: Mapping[str, str] | None = None) -> Run:
    """Read a run directory (or a single file) into a normalized Run.

    Raises IngestError when nothing usable is found; everything else becomes ``Run.issues``.
    """
    run_dir = Path(path)
    parsed = _parse_all(discover(run_dir), tb_aliases)
    return _merge(run_dir, parsed)


# --------------------------------------------------------------------------- parsing


def _parse_all(discovery: Discovery, tb_aliases: Mapping[str, str] | None) -> _Parsed:
    parsed = _Parsed(discovery=discovery, issues=list(discovery.issues))
    for found in discovery.files:
        try:
            _parse_one(found, parsed)
        except IngestError as exc:
            # One unusable file never stops the others from being read.
            parsed.issues.append(IngestIssue(exc.source or SourceRef(found.rel), exc.message, "error"))
    event_files = discovery.of_kind("tensorboard")
    if event_files:
        try:
            parsed.tensorboard = read_tensorboard(
                [f.path for f in event_files], [f.rel for f in event_files], aliases=tb_aliases
            )
            parsed.issues.extend(parsed.tensorboard.issues)
        except IngestError as exc:
            parsed.issues.append(IngestIssue(exc.source or SourceRef(event_files[0].rel), exc.message, "error"))
    return parsed


def _parse_one(found: FoundFile, parsed: _Parsed) -> None:
    if found.kind == "console_log":
        log = parse_console_log(found.path, found.rel)
        parsed.logs.append((found, log))
        parsed.issues.extend(log.issues)
    elif found.kind == "summary_csv":
        csv = parse_summary_csv(found.path, found.rel)
        parsed.csvs.append((found, csv))
        parsed.issues.extend(csv.issues)
    elif found.kind == "args_yaml":
        reader = parse_wandb_config if found.family == "wandb config.yaml" else parse_args_yaml
        args = reader(found.path, found.rel)
        parsed.args.append((found, args))
        parsed.issues.extend(args.issues)


# --------------------------------------------------------------------------- merging


def _merge(run_dir: Path, parsed: _Parsed) -> Run:
    logs = [log for _, log in parsed.logs if len(log.steps) or len(log.evals) or log.info]
    csv = _pick_csv(parsed)
    config = _build_config(parsed, logs, _timm_version(logs, csv, parsed))
    epochs, refs = _epoch_frame(csv, logs, parsed.tensorboard, parsed.issues)
    steps = _step_frame(logs)
    if epochs.empty and steps.empty and not parsed.args:
        where = SourceRef(str(run_dir))
        detail = "; ".join(str(i) for i in parsed.issues[:5])
        raise IngestError(
            "nothing usable: no timm console log, summary.csv, args.yaml or TensorBoard scalars were found"
            + (f" ({detail})" if detail else ""),
            where,
        )
    events = _events(parsed)
    # timm's recipe arithmetic (LR from lr_base, global batch, schedule length, num_classes), once.
    config = resolve_recipe(config, _recipe_facts(logs, epochs, steps))
    return Run(
        run_dir=run_dir,
        config=config,
        epochs=epochs,
        epoch_refs=refs,
        steps=steps,
        events=tuple(events),
        sources=tuple(_source_infos(parsed)),
        issues=tuple(parsed.issues),
        timm_version=config.timm_version,
        epochs_scheduled=config.effective.get("epochs_scheduled"),
    )


def _pick_csv(parsed: _Parsed) -> SummaryCsv | None:
    """The summary.csv with the most epochs; others are reported, not merged (they belong to other runs)."""
    if not parsed.csvs:
        return None
    ranked = sorted(parsed.csvs, key=lambda item: len(item[1].frame), reverse=True)
    for found, _ in ranked[1:]:
        parsed.issues.append(IngestIssue(SourceRef(found.rel), f"another summary.csv ({ranked[0][0].rel}) has more epochs; this one is ignored"))
    return ranked[0][1]


def _build_config(parsed: _Parsed, logs: Sequence[ConsoleLog], version: TimmVersion | None) -> TrainConfig:
    args: Mapping[str, Any] | None = None
    source = None
    if parsed.args:
        found, args_file = parsed.args[0]
        args, source = args_file.args, SourceRef(found.rel)
    if args is None:
        # Without args.yaml we do not know the recipe (nor that timm wrote the run): no defaults are
        # invented; only what the log itself shows ends up in ``effective``.
        base = TrainConfig(values={}, timm_version=version)
    else:
        base = build_config(args, source, version)
    effective, sources = dict(base.effective), dict(base.effective_sources)
    _effective_from_logs(logs, effective, sources)
    if "world_size" not in effective and args is not None:
        _world_size_from_throughput(logs, base.values, effective, sources)
    return replace(base, effective=effective, effective_sources=sources)


def _world_size_from_throughput(logs: Sequence[ConsoleLog], values: Mapping[str, Any], effective: dict, sources: dict) -> None:
    """timm prints global samples/s = batch x world size / step time, so their product reveals the world size
    when the log has no "Training in distributed mode" line (e.g. it was cut or re-formatted)."""
    batch = values.get("batch_size")
    accum = values.get("grad_accum_steps") or 1
    if not isinstance(batch, (int, float)) or batch <= 0:
        return
    for log in logs:
        steps = log.steps
        if not len(steps):
            continue
        samples = (steps["samples_per_sec"] * steps["batch_time"]).to_numpy(dtype="float64")
        samples = samples[np.isfinite(samples) & (samples > 0)]
        if samples.size < 3:
            continue
        world = float(np.median(samples)) / (float(batch) * float(accum))
        if world >= 1.5 and abs(world - round(world)) < 0.1:
            effective["world_size"] = int(round(world))
            sources["world_size"] = f"{log.path}: samples/s x step time = {np.median(samples):.0f} samples per step = batch_size {batch} x {round(world)} processes"
            return


def _effective_from_logs(logs: Sequence[ConsoleLog], effective: dict, sources: dict) -> None:
    for log in logs:
        if log.lr_calc is not None and "lr" not in effective:
            calc = log.lr_calc
            effective["lr"] = calc.lr
            sources["lr"] = f"{calc.source}: computed by timm from lr_base {calc.lr_base:g} and global batch {calc.global_batch:g} ({calc.scaling} scaling)"
            effective["global_batch"] = int(calc.global_batch)
            sources["global_batch"] = str(calc.source)
        for key in ("world_size", "num_classes", "input_size", "model", "param_count", "pretrained_source"):
            if key in log.info and key not in effective and log.info[key] is not None:
                effective[key] = log.info[key]
                ref = log.info_refs.get(key)
                sources[key] = str(ref) if ref else log.path
        data_config = log.info.get("data_config") or {}
        if "input_size" not in effective and data_config.get("input_size"):
            effective["input_size"] = tuple(data_config["input_size"])
            ref = log.info_refs.get("data_config")
            sources["input_size"] = str(ref) if ref else log.path


class _EpochTable:
    """Per-epoch values being merged from several sources, each with the SourceRef it came from."""

    def __init__(self, issues: list[IngestIssue]):
        self.values: dict[str, dict[int, float]] = {}
        self.refs: dict[str, dict[int, SourceRef]] = {}
        self.issues = issues

    def put(self, column: str, epoch: int, value: float, ref: SourceRef, *, overwrite: bool = False) -> None:
        """Set a value unless one is there already (``overwrite`` for pass-specific log columns)."""
        known = self.values.setdefault(column, {})
        if overwrite or epoch not in known:
            known[epoch] = value
            self.refs.setdefault(column, {})[epoch] = ref

    def fill_or_check(self, column: str, epoch: int, value: float, ref: SourceRef,
                      tolerance: float = AGREEMENT_TOLERANCE) -> None:
        """Fill a gap, or compare with the documented source (summary.csv, put first) and warn on disagreement."""
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
        return len(set().union(*self.values.values())) if self.values else 0

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if not self.values:
            empty = pd.DataFrame(index=pd.Index([], name="epoch", dtype="int64"))
            return empty, empty.copy()
        ordered = [c for c in EPOCH_COLUMNS if c in self.values] + sorted(c for c in self.values if c not in EPOCH_COLUMNS)
        frame = pd.DataFrame({c: pd.Series(self.values[c], dtype="float64") for c in ordered})
        frame.index.name = "epoch"
        frame = frame.sort_index()
        refs = pd.DataFrame({c: pd.Series(self.refs.get(c, {}), dtype="object") for c in ordered}).reindex(frame.index)
        return frame, refs


def _epoch_frame(
    csv: SummaryCsv | None,
    logs: Sequence[ConsoleLog],
    tb: TensorBoardScalars | None,
    issues: list[IngestIssue],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = _EpochTable(issues)
    if csv is not None:  # first, so that the log is checked against it
        for column in csv.frame.columns:
            for epoch, value in csv.frame[column].items():
                table.put(column, int(epoch), _as_float(value), SourceRef(csv.path, line=int(csv.lines.get(epoch, 0)) or None))
    for log in logs:
        _log_epochs(log, table, has_csv=csv is not None)
    if tb is not None:
        _tensorboard_epochs(tb, table)
    return table.frames()


def _log_epochs(log: ConsoleLog, table: _EpochTable, *, has_csv: bool) -> None:
    evals = log.evals
    if len(evals):
        # The latest validation of each (epoch, pass) wins: after a resume timm re-runs epochs.
        latest = evals.sort_values(["segment", "src_line"]).groupby(["epoch", "pass"], sort=False).tail(1)
        has_ema = "ema" in set(latest["pass"])
        for record in latest.to_dict("records"):
            epoch, kind = int(record["epoch"]), str(record["pass"])
            ref = SourceRef(log.path, line=int(record["src_line"]))
            reported = (kind == "ema") if has_ema else (kind == "model")  # timm reports the EMA's eval when it has one
            for metric in EVAL_METRICS:
                value = _as_float(record[metric])
                table.put(f"{metric}_{'ema' if kind == 'ema' else 'model'}", epoch, value, ref, overwrite=True)
                if reported:
                    table.fill_or_check(metric, epoch, value, ref)
    if len(log.steps):
        by_epoch = log.steps.sort_values(["segment", "src_line"]).groupby("epoch", sort=False)
        for row in by_epoch.tail(1).itertuples(index=False):
            ref = SourceRef(log.path, line=int(row.src_line))
            table.fill_or_check("train_loss", int(row.epoch), _as_float(row.train_loss_avg), ref, tolerance=0.05)
        if not has_csv or "lr" not in table.values:
            for row in by_epoch.head(1).itertuples(index=False):
                table.put("lr", int(row.epoch), _as_float(row.lr), SourceRef(log.path, line=int(row.src_line)))


def _tensorboard_epochs(tb: TensorBoardScalars, table: _EpochTable) -> None:
    """TensorBoard scalars logged once per epoch fill metrics the log and CSV lack.

    A tag counts as epoch-level when its steps are few and dense (0..N or 1..N); per-step tags
    (thousands of steps) are left to the step frame.
    """
    frame = tb.frame
    if frame.empty:
        return
    n_epochs_hint = table.n_epochs()
    for metric, group in frame.groupby("metric", sort=False):
        steps = group["step"].to_numpy()
        if not _looks_epoch_level(steps, n_epochs_hint):
            continue
        offset = 1 if steps.min() >= 1 and n_epochs_hint == 0 and not (steps == 0).any() else 0
        group = group.sort_values(["step", "wall_time"]).drop_duplicates("step", keep="last")
        for row in group.itertuples(index=False):
            table.put(str(metric), int(row.step) - offset, float(row.value), SourceRef(str(row.file), record=int(row.record)))


def _looks_epoch_level(steps: np.ndarray, n_epochs_hint: int) -> bool:
    unique = np.unique(steps)
    if unique.size == 0:
        return False
    span = unique.max() - unique.min() + 1
    dense = unique.size >= 0.8 * span
    small = unique.max() <= max(5000, 2 * n_epochs_hint)
    return bool(dense and small)


def _step_frame(logs: Sequence[ConsoleLog]) -> pd.DataFrame:
    frames = []
    for log in logs:
        if len(log.steps):
            frame = log.steps.copy()
            frame["src_file"] = log.path
            frames.append(frame)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in (*STEP_COLUMNS, "segment", "src_line")}).assign(
            src_file=pd.Series(dtype="object")
        )
    steps = pd.concat(frames, ignore_index=True)
    steps["src_file"] = steps["src_file"].astype("category")
    return steps


def _events(parsed: _Parsed) -> list[Event]:
    events: list[Event] = []
    for _, log in parsed.logs:
        events.extend(log.events)
    for _, csv in parsed.csvs:
        events.extend(csv.events)
    for found in parsed.discovery.of_kind("checkpoint"):
        events.append(Event("checkpoint", f"checkpoint file present: {found.rel}", SourceRef(found.rel)))
    return events


def _source_infos(parsed: _Parsed) -> list[SourceInfo]:
    infos: list[SourceInfo] = []
    for found, log in parsed.logs:
        epochs = _span(log.evals["epoch"] if len(log.evals) else log.steps.get("epoch", pd.Series(dtype=float)))
        metrics = _log_metrics(log)
        infos.append(SourceInfo(found.rel, "console_log", _log_family(log, found), log.timm_version, metrics, epochs, len(log.steps) + len(log.evals)))
    for found, csv in parsed.csvs:
        infos.append(SourceInfo(found.rel, "summary_csv", f"summary.csv {csv.family}", None, tuple(csv.frame.columns), _span(csv.frame.index.to_series()), len(csv.frame)))
    for found, args in parsed.args:
        infos.append(SourceInfo(found.rel, "args_yaml", found.family, None, (), None, len(args.args)))
    if parsed.tensorboard is not None:
        frame = parsed.tensorboard.frame
        for name in parsed.tensorboard.files:
            part = frame[frame["file"] == name] if not frame.empty else frame
            metrics = tuple(sorted(set(part["metric"]))) if not part.empty else ()
            infos.append(SourceInfo(name, "tensorboard", "TensorBoard event file", None, metrics, None, len(part)))
    for found in parsed.discovery.files:
        if found.kind in ("checkpoint", "other"):
            infos.append(SourceInfo(found.rel, found.kind))
    return infos


def _log_metrics(log: ConsoleLog) -> tuple[str, ...]:
    metrics: list[str] = []
    if len(log.steps):
        metrics += ["train_loss (per step)", "lr (per step)"]
    if len(log.evals):
        for kind in sorted(set(log.evals["pass"])):
            metrics += [f"{m}_{kind}" for m in EVAL_METRICS]
    return tuple(metrics)


def _log_family(log: ConsoleLog, found: FoundFile) -> str:
    return f"timm console log, Train layout {log.layout}" if log.layout else "timm console log, no Train lines"


def _span(series: pd.Series) -> tuple[int, int] | None:
    clean = pd.to_numeric(series, errors="coerce").dropna()
    if clean.empty:
        return None
    return int(clean.min()), int(clean.max())


def _timm_version(logs: Sequence[ConsoleLog], csv: SummaryCsv | None, parsed: _Parsed) -> TimmVersion | None:
    """The run's one timm version: the console log's reading when it has one (its messages and number
    formats are the best evidence); else what args.yaml's keys and summary.csv's columns allow together."""
    for log in logs:
        version = TimmVersion.parse(log.timm_version)
        if version is not None:
            return version
    from_args = version_from_args(parsed.args[0][1].args) if parsed.args else None
    from_csv = TimmVersion.parse(csv.family) if csv is not None else None
    return narrowest([from_args, from_csv])


def step_counts(steps: pd.DataFrame) -> dict[str, Any]:
    """The step frame's epoch and ``N`` columns as arrays, for timm.recipe (which reads no pandas)."""
    if not isinstance(steps, pd.DataFrame) or steps.empty or not {"epoch", "per_epoch"} <= set(steps.columns):
        return {}
    return {
        "step_epoch": pd.to_numeric(steps["epoch"], errors="coerce").to_numpy(dtype="float64"),
        "step_per_epoch": pd.to_numeric(steps["per_epoch"], errors="coerce").to_numpy(dtype="float64"),
    }


def _recipe_facts(logs: Sequence[ConsoleLog], epochs: pd.DataFrame, steps: pd.DataFrame) -> RecipeFacts:
    """What the files say about the recipe: the last log's ``Scheduled epochs`` line, the reported
    accuracies, and the ``[i/N]`` of the Train: lines."""
    scheduled, ref = None, None
    for log in reversed(list(logs)):
        value = log.info.get("scheduled_epochs")
        if value:
            scheduled, ref = value, str(log.info_refs.get("scheduled_epochs") or log.path)
            break
    top1 = epochs["eval_top1"].to_numpy(dtype="float64") if "eval_top1" in epochs.columns else None
    top5 = epochs["eval_top5"].to_numpy(dtype="float64") if "eval_top5" in epochs.columns else None
    train_loss = epochs["train_loss"].to_numpy(dtype="float64") if "train_loss" in epochs.columns else None
    eval_loss = epochs["eval_loss"].to_numpy(dtype="float64") if "eval_loss" in epochs.columns else None
    return RecipeFacts(scheduled_epochs=scheduled, scheduled_ref=ref, eval_top1=top1, eval_top5=top5,
                       train_loss=train_loss, eval_loss=eval_loss, epochs=epochs.index.to_numpy(),
                       **step_counts(steps))


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
