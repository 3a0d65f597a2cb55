"""The registered console-log format (see ``formats.py``): a parsed log as a Contribution."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.ingest.console_log.data import ConsoleLog
from mnv4_postmortem.analyzer.ingest.contribution import Contribution, Effective, EpochValues
from mnv4_postmortem.analyzer.model import SourceInfo, SourceKind, SourceRef

_EVAL_METRICS = ("eval_loss", "eval_top1", "eval_top5")
# The log prints 3-4 decimals: two numbers of one epoch "agree" at that precision. The train loss
# is a running mean at the epoch's last Train line, summary.csv's the epoch mean: looser.
_EVAL_TOLERANCE = 0.02
_TRAIN_LOSS_TOLERANCE = 0.05


def log_contribution(log: ConsoleLog, shown: str) -> Contribution:
    """A parsed log as epoch values, step rows, run-time values and events."""
    info = SourceInfo(shown, "console_log", _family_text(log), log.timm_version, _metrics(log),
                      _epoch_span(log), len(log.steps) + len(log.evals))
    if not (len(log.steps) or len(log.evals) or log.info):   # nothing but events and issues
        return Contribution(format="console_log", sources=(info,), events=log.events, issues=log.issues)
    steps = None
    if len(log.steps):
        steps = log.steps.copy(deep=False)    # copy-on-write: the new column leaves log.steps as it is
        steps["src_file"] = log.path
    return Contribution(
        format="console_log", sources=(info,), epochs=_epoch_values(log), steps=steps,
        effective=_effective(log), scheduled_epochs=_scheduled(log), samples_per_step=_samples_per_step(log),
        timm_version=log.timm_version, records=len(log.evals), events=log.events, issues=log.issues,
    )


def _epoch_values(log: ConsoleLog) -> tuple[EpochValues, ...]:
    out: list[EpochValues] = []
    evals = log.evals
    if len(evals):
        # The latest validation of each (epoch, pass) wins: after a resume timm re-runs epochs.
        latest = evals.sort_values(["segment", "src_line"]).groupby(["epoch", "pass"], sort=False).tail(1)
        has_ema = "ema" in set(latest["pass"])
        per_pass, reported = [], []
        for record in latest.to_dict("records"):
            epoch, kind = int(record["epoch"]), str(record["pass"])
            ref = SourceRef(log.path, line=int(record["src_line"]))
            shows = (kind == "ema") if has_ema else (kind == "model")  # timm reports the EMA's eval when it has one
            for metric in _EVAL_METRICS:
                value = _as_float(record[metric])
                per_pass.append((f"{metric}_{'ema' if kind == 'ema' else 'model'}", epoch, value, ref))
                if shows:
                    reported.append((metric, epoch, value, ref))
        out += [EpochValues(per_pass, overwrite=True), EpochValues(reported, tolerance=_EVAL_TOLERANCE)]
    if len(log.steps):
        steps = log.steps
        if not (steps["segment"].is_monotonic_increasing and steps["src_line"].is_monotonic_increasing):
            steps = steps.sort_values(["segment", "src_line"])
        # each epoch's last and first Train row, in row order (what groupby's tail(1)/head(1) give), as arrays
        epoch = steps["epoch"].to_numpy()
        first = np.sort(np.unique(epoch, return_index=True)[1])
        last = np.sort(len(epoch) - 1 - np.unique(epoch[::-1], return_index=True)[1])
        lines = steps["src_line"].to_numpy()
        losses = [("train_loss", e, _as_float(v), SourceRef(log.path, line=line)) for e, v, line in
                  zip(epoch[last].tolist(), steps["train_loss_avg"].to_numpy()[last].tolist(), lines[last].tolist())]
        lrs = [("lr", e, _as_float(v), SourceRef(log.path, line=line)) for e, v, line in
               zip(epoch[first].tolist(), steps["lr"].to_numpy()[first].tolist(), lines[first].tolist())]
        out += [EpochValues(losses, tolerance=_TRAIN_LOSS_TOLERANCE), EpochValues(lrs, only_new_column=True)]
    return tuple(out)


def _effective(log: ConsoleLog) -> tuple[Effective, ...]:
    out: list[Effective] = []
    if log.lr_calc is not None:
        calc = log.lr_calc
        out.append(Effective("lr", calc.lr, f"{calc.source}: computed by timm from lr_base {calc.lr_base:g} and "
                                            f"global batch {calc.global_batch:g} ({calc.scaling} scaling)"))
        out.append(Effective("global_batch", int(calc.global_batch), str(calc.source)))
    for key in ("world_size", "num_classes", "input_size", "model", "param_count", "pretrained_source"):
        if key in log.info and log.info[key] is not None:
            ref = log.info_refs.get(key)
            out.append(Effective(key, log.info[key], str(ref) if ref else log.path))
    data_config = log.info.get("data_config") or {}
    if data_config.get("input_size"):
        ref = log.info_refs.get("data_config")
        out.append(Effective("input_size", tuple(data_config["input_size"]), str(ref) if ref else log.path))
    return tuple(out)


def _scheduled(log: ConsoleLog) -> tuple[int, str] | None:
    value = log.info.get("scheduled_epochs")
    if not value:
        return None
    ref = log.info_refs.get("scheduled_epochs")
    return int(value), str(ref or log.path)


def _samples_per_step(log: ConsoleLog) -> float | None:
    """timm prints global samples/s = batch x world size / step time: their product is the samples
    of one optimizer step (the merge divides it by the per-process batch to find the world size)."""
    steps = log.steps
    if not len(steps):
        return None
    samples = (steps["samples_per_sec"] * steps["batch_time"]).to_numpy(dtype="float64")
    samples = samples[np.isfinite(samples) & (samples > 0)]
    return float(np.median(samples)) if samples.size >= 3 else None


def _metrics(log: ConsoleLog) -> tuple[str, ...]:
    metrics: list[str] = []
    if len(log.steps):
        metrics += ["train_loss (per step)", "lr (per step)"]
    if len(log.evals):
        for kind in sorted(set(log.evals["pass"])):
            metrics += [f"{m}_{kind}" for m in _EVAL_METRICS]
    return tuple(metrics)


def _family_text(log: ConsoleLog) -> str:
    return f"timm console log, Train layout {log.layout}" if log.layout else "timm console log, no Train lines"


def _epoch_span(log: ConsoleLog) -> tuple[int, int] | None:
    column = log.evals["epoch"] if len(log.evals) else log.steps.get("epoch", pd.Series(dtype=float))
    clean = pd.to_numeric(column, errors="coerce").dropna()
    return (int(clean.min()), int(clean.max())) if len(clean) else None


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class _ConsoleLogFormat:
    name = "console_log"
    kind: SourceKind = "console_log"

    def sniff(self, name: str, head: bytes) -> str | None:
        from mnv4_postmortem.analyzer.ingest.console_log import sniff_console_log

        return sniff_console_log(head)

    def parse(self, path: Path, shown: str) -> Contribution:
        from mnv4_postmortem.analyzer.ingest.console_log import parse_console_log

        return log_contribution(parse_console_log(path, shown), shown)


CONSOLE_LOG = _ConsoleLogFormat()
