"""The pipeline after ingest: Run -> detect -> derive -> namespace -> rules -> ranked findings -> Report.

This module only wires stages together; each stage lives in its own package. It also provides
the three functions the rule-test harness needs (``namespace_for``, ``load_run``, ``synthetic_run``)
so that ``rules test`` and pytest exercise exactly the production pipeline.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.detect import Detection, detect
from mnv4_postmortem.analyzer.engine import RulePack, evaluate, load_builtin_rules, load_rules
from mnv4_postmortem.analyzer.engine.notation import parse_series
from mnv4_postmortem.analyzer.features.derived import Derived, derive
from mnv4_postmortem.analyzer.features.namespace import build_namespace, is_known_name
from mnv4_postmortem.analyzer.findings import make_diagnosis
from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.ingest.args_yaml import build_config
from mnv4_postmortem.analyzer.ingest.timm_defaults import command_defaults
from mnv4_postmortem.analyzer.model import STEP_COLUMNS, Run, TrainConfig
from mnv4_postmortem.analyzer.report import Report
from mnv4_postmortem.analyzer.report_facts import build_report_facts

__all__ = ["analyze", "load_pack", "load_run", "namespace_for", "synthetic_run"]

# Facts shown beside the findings (renderers display them; nothing here is a diagnosis).
FACT_FIELDS = (
    "lr", "lr_source", "global_batch", "updates_per_epoch", "updates_run", "epochs_run", "epochs_scheduled",
    "run_input_size", "pretrained_input_size", "input_size_ratio", "uses_pretrained", "num_classes",
    "ema_init_share_final",
)


def load_pack(extra: Sequence[Path] = (), *, builtin: bool = True) -> RulePack:
    """The shipped rules plus the user's own (``report --rules PATH``). Broken files are kept as errors."""
    packs = []
    if builtin:
        packs.append(load_builtin_rules(known_names=is_known_name))
    if extra:
        packs.append(load_rules(list(extra), known_names=is_known_name))
    if len(packs) == 1:
        return packs[0]
    rules = tuple(r for p in packs for r in p.rules)
    errors = tuple(e for p in packs for e in p.errors)
    causes = {k: v for p in packs for k, v in dict(p.causes).items()}
    return RulePack(rules=rules, errors=errors, causes=causes)


def namespace_for(run: Run) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The rule namespace and the pipeline metadata (args and defaults for fix command lines)."""
    run, detection, derived = _stages(run)
    return _names(run, detection, derived), _pipeline_meta(run)


def analyze(run: Run, pack: RulePack) -> Report:
    run, detection, derived = _stages(run)
    evaluation = evaluate(pack, _names(run, detection, derived), pipeline_meta=_pipeline_meta(run))
    rule_errors = [str(e) for e in pack.errors] + [str(w) for w in evaluation.warnings]
    diagnosis = make_diagnosis(evaluation.findings, evaluation.considered, rule_errors)
    return Report(
        run=run,
        findings=diagnosis.findings,
        differential=diagnosis.differential,
        segments=_segments_json(detection),
        facts=_facts(derived),
        warnings=tuple(str(i) for i in run.issues),
        rule_errors=diagnosis.rule_errors,
        facts_for_reports=build_report_facts(run, detection, diagnosis.findings, pack),
    )


def _stages(run: Run) -> tuple[Run, Detection, Derived]:
    """The statistics every consumer needs, computed once: the run (num_classes filled in), detection, derived."""
    run = with_inferred_classes(run)
    return run, detect(run), derive(run)


def with_inferred_classes(run: Run) -> Run:
    """When num_classes is unknown, read it off a run stuck at chance level.

    A model that predicts one class scores exactly 100/C top-1 and 500/C top-5 on a balanced
    validation set, so top-1 stuck at v with top-5 stuck at 5v for many epochs reveals C = 100/v.
    """
    if run.config.get("num_classes") or not {"eval_top1", "eval_top5"} <= set(run.epochs.columns):
        return run
    top1 = run.epochs["eval_top1"].dropna()
    top5 = run.epochs["eval_top5"].dropna()
    if len(top1) < 5 or len(top5) < 5:
        return run
    value1, value5 = float(top1.median()), float(top5.median())
    # "Stuck" = nearly every epoch within 2% of the median (distributed padding moves the last digit).
    stuck = lambda s, v: bool((abs(s - v) <= 0.02 * max(v, 1e-9)).mean() >= 0.8)  # noqa: E731
    if value1 <= 0 or not (stuck(top1, value1) and stuck(top5, value5)):
        return run
    if abs(value5 - min(100.0, 5 * value1)) > 0.01 * value5:
        return run
    classes = round(100.0 / value1)
    if classes < 2 or abs(100.0 / classes - value1) > 0.01 * value1:
        return run
    effective = {**run.config.effective, "num_classes": classes}
    sources = {**run.config.effective_sources,
               "num_classes": f"inferred: eval_top1 stays at {value1:g} and eval_top5 at {value5:g} (= 100/C and 500/C)"}
    return replace(run, config=replace(run.config, effective=effective, effective_sources=sources))


def _names(run: Run, detection: Detection, derived: Derived) -> Mapping[str, Any]:
    return build_namespace(run, detection, derived).as_names()


def _pipeline_meta(run: Run) -> Mapping[str, Any]:
    return {"args": dict(run.config.args), "defaults": command_defaults(run.timm_version)}


def _segments_json(detection: Detection) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for metric, segments in detection.segments.items():
        out[metric] = [
            {
                "start": _num(s.x_first),
                "end": _num(s.x_last),
                "unit": s.unit,
                "n": s.n,
                "label": s.label,
                "level": _num(s.level),
                "slope": _num(s.slope),
                "slope_ci": [_num(s.slope_low), _num(s.slope_high)],
                "noise": _num(s.noise),
            }
            for s in segments
        ]
    return out


def _facts(derived: Derived) -> dict[str, Any]:
    return {name: getattr(derived, name, None) for name in FACT_FIELDS}


def _num(value: Any) -> Any:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and abs(value) < 1e15 else round(value, 6)


# ----------------------------------------------------------------------------- rule tests


def synthetic_run(config: Mapping[str, Any], series: Mapping[str, Any], steps_per_epoch: int | None = None) -> Run:
    """A Run built from a rule test's inline ``config`` and promtool-style ``series`` notation.

    With ``steps_per_epoch`` a minimal step frame is added (one logged step per epoch) so that
    update counts (EMA, schedule) can be derived the way they are from a real log.
    """
    columns = {name: parse_series(v) if isinstance(v, str) else np.asarray(v, dtype="float64") for name, v in series.items()}
    length = max((len(v) for v in columns.values()), default=0)
    frame = pd.DataFrame(
        {name: np.pad(v.astype("float64"), (0, length - len(v)), constant_values=np.nan) for name, v in columns.items()},
        index=pd.RangeIndex(length, name="epoch"),
    )
    base = build_config(dict(config), None, None)
    effective = {k: config[k] for k in ("lr", "num_classes", "input_size", "world_size") if k in config}
    run_config = TrainConfig(values=base.values, args=dict(config), defaulted=base.defaulted, effective=effective)
    steps = _synthetic_steps(frame, steps_per_epoch)
    epochs = config.get("epochs")
    return Run(
        run_dir=Path("<inline>"),
        config=run_config,
        epochs=frame,
        epoch_refs=pd.DataFrame(index=frame.index, columns=frame.columns, dtype="object"),
        steps=steps,
        events=(),
        sources=(),
        issues=(),
        timm_version=config.get("timm_version"),
        epochs_scheduled=int(epochs) if isinstance(epochs, (int, float)) else None,
    )


def _synthetic_steps(frame: pd.DataFrame, steps_per_epoch: int | None) -> pd.DataFrame:
    if not steps_per_epoch or frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in STEP_COLUMNS})
    epochs = frame.index.to_numpy()
    last = steps_per_epoch - 1
    data = {
        "epoch": epochs,
        "idx": np.full(len(epochs), last),
        "per_epoch": np.full(len(epochs), steps_per_epoch),
        "update": epochs * steps_per_epoch + last,
        "train_loss": frame["train_loss"].to_numpy() if "train_loss" in frame else np.nan,
        "train_loss_avg": frame["train_loss"].to_numpy() if "train_loss" in frame else np.nan,
        "lr": frame["lr"].to_numpy() if "lr" in frame else np.nan,
        "samples_per_sec": np.nan,
        "batch_time": np.nan,
        "data_time": np.nan,
    }
    return pd.DataFrame(data)
