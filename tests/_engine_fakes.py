"""A stand-in for the real pipeline (ingest -> features), for the engine's own tests.

The engine takes ``load_run``/``make_run``/``diagnose`` as arguments; these fakes build a small
namespace from a real timm run folder (args.yaml + summary.csv) or from inline test input, so the
engine tests never depend on the modules other people are writing.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mnv4_postmortem.analyzer.model import SourceRef

REPO = Path(__file__).resolve().parents[1]
GOOD_RULES = REPO / "tests" / "data" / "rules_good"
BAD_RULES = REPO / "tests" / "data" / "rules_bad"
RUNS = REPO / "fixtures" / "runs"

# What the example rules may read: the schema handed to the loader as ``known_names``.
SCHEMA: dict[str, Any] = {
    "config": {"*": None},
    "derived": {"ema_init_share": None, "updates_run": None, "updates_per_epoch": None, "data_time_share": None},
    "series": {
        "*": {
            "first": None, "last": None, "min": None, "max": None, "n": None, "rel_drop": None,
            "values": None, "flat": {"epochs": None, "mean": None, "refs": None},
        }
    },
    "events": None,
}

DEFAULTS = {"model": "resnet50", "model_ema": False, "model_ema_decay": 0.9998, "model_ema_warmup": False,
            "lr": None, "warmup_epochs": 5, "opt": "sgd", "batch_size": 128, "epochs": 300}


@dataclass
class FakeRun:
    config: dict[str, Any]
    series: dict[str, np.ndarray]
    refs: dict[str, list[SourceRef]] = field(default_factory=dict)
    steps_per_epoch: int = 32


def load_run(path: Path) -> FakeRun:
    config = yaml.safe_load((path / "args.yaml").read_text())
    columns: dict[str, list[float]] = {}
    refs: dict[str, list[SourceRef]] = {}
    with (path / "summary.csv").open(newline="") as handle:
        for line_no, row in enumerate(csv.DictReader(handle), start=2):
            for name, text in row.items():
                columns.setdefault(name, []).append(float(text))
                refs.setdefault(name, []).append(SourceRef(str(path / "summary.csv"), line=line_no))
    return FakeRun(config, {k: np.array(v) for k, v in columns.items() if k != "epoch"}, refs)


def make_run(config: dict[str, Any], series: dict[str, np.ndarray], steps_per_epoch: int = 32) -> FakeRun:
    return FakeRun(dict(config), dict(series), {}, steps_per_epoch)


def _flat(values: np.ndarray) -> int:
    """Last index of the leading stretch that stays within 1 point of the first value."""
    last = 0
    for i, v in enumerate(values):
        if not math.isfinite(v) or abs(v - values[0]) > 1.0:
            break
        last = i
    return last


def _series_view(values: np.ndarray, refs: list[SourceRef]) -> dict[str, Any]:
    first, last = float(values[0]), float(values[-1])
    end = _flat(values)
    return {
        "values": values.tolist(), "n": len(values), "first": first, "last": last,
        "min": float(np.nanmin(values)), "max": float(np.nanmax(values)),
        "rel_drop": (first - last) / first if first else math.nan,
        "flat": {"epochs": [0, end], "mean": float(np.mean(values[: end + 1])), "refs": refs[: end + 1]},
    }


def diagnose(run: FakeRun) -> tuple[dict[str, Any], dict[str, Any]]:
    config = run.config
    series = {name: _series_view(v, run.refs.get(name, [])) for name, v in run.series.items() if len(v)}
    n_epochs = max((len(v) for v in run.series.values()), default=0)
    derived: dict[str, Any] = {"updates_per_epoch": run.steps_per_epoch, "updates_run": run.steps_per_epoch * n_epochs}
    if config.get("model_ema") and "eval_top1" in series:
        flat_end = series["eval_top1"]["flat"]["epochs"][1]
        derived["ema_init_share"] = config["model_ema_decay"] ** (run.steps_per_epoch * (flat_end + 1))
    if "data_time_share" in config:
        derived["data_time_share"] = config["data_time_share"]
    events = [
        {"kind": "nonfinite", "epoch": i}
        for i, v in enumerate(run.series.get("train_loss", np.array([])))
        if not math.isfinite(v)
    ]
    namespace = {"config": config, "derived": derived, "series": series, "events": events}
    return namespace, {"args": config, "defaults": DEFAULTS}
