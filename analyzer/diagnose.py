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
from mnv4_postmortem.analyzer.timm.command_line import render_train_command
from mnv4_postmortem.analyzer.engine.notation import parse_series
from mnv4_postmortem.analyzer.features.derived import Derived, derive
from mnv4_postmortem.analyzer.features.namespace import build_namespace, is_known_name
from mnv4_postmortem.analyzer.findings import make_diagnosis
from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.ingest.args_yaml import build_config
from mnv4_postmortem.analyzer.ingest.merge import step_counts
from mnv4_postmortem.analyzer.model import STEP_COLUMNS, Run, TrainConfig
from mnv4_postmortem.analyzer.report import Report
from mnv4_postmortem.analyzer.timm.defaults import command_defaults
from mnv4_postmortem.analyzer.timm.recipe import RecipeFacts, resolve_recipe

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
    meta = _pipeline_meta(run)
    diagnosis = make_diagnosis(
        evaluation.findings, evaluation.considered, rule_errors,
        render_command=lambda patch: render_train_command(meta["args"], patch, meta["defaults"]),
    )
    return Report(
        run=run,
        findings=diagnosis.findings,
        differential=diagnosis.differential,
        segments=_segments_json(detection),
        facts=_facts(derived),
        warnings=tuple(str(i) for i in run.issues),
        rule_errors=diagnosis.rule_errors,
        combined_fix=diagnosis.combined_fix,
    )


def _stages(run: Run) -> tuple[Run, Detection, Derived]:
    """The statistics every consumer needs, computed once: detection and derived quantities."""
    return run, detect(run), derive(run)


def _names(run: Run, detection: Detection, derived: Derived) -> Mapping[str, Any]:
    return build_namespace(run, detection, derived).as_names()


def _pipeline_meta(run: Run) -> Mapping[str, Any]:
    # The defaults of the era the config was filled from: a fix command and the config never disagree.
    return {"args": dict(run.config.args), "defaults": command_defaults(run.config.timm_version)}


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
    base = build_config(dict(config), None, config.get("timm_version"))
    effective = {k: config[k] for k in ("lr", "num_classes", "input_size", "world_size") if k in config}
    epochs = config.get("epochs")
    steps = _synthetic_steps(frame, steps_per_epoch)
    # A rule test's ``epochs`` is the schedule length it means (as a log's "Scheduled epochs" line).
    facts = RecipeFacts(scheduled_epochs=int(epochs) if isinstance(epochs, (int, float)) else None,
                        scheduled_ref="rule test config",
                        eval_top1=frame["eval_top1"].to_numpy() if "eval_top1" in frame else None,
                        eval_top5=frame["eval_top5"].to_numpy() if "eval_top5" in frame else None,
                        train_loss=frame["train_loss"].to_numpy() if "train_loss" in frame else None,
                        eval_loss=frame["eval_loss"].to_numpy() if "eval_loss" in frame else None,
                        epochs=frame.index.to_numpy(),
                        **step_counts(steps))
    run_config = resolve_recipe(replace(base, args=dict(config), effective=effective), facts)
    return Run(
        run_dir=Path("<inline>"),
        config=run_config,
        epochs=frame,
        epoch_refs=pd.DataFrame(index=frame.index, columns=frame.columns, dtype="object"),
        steps=steps,
        events=(),
        sources=(),
        issues=(),
        timm_version=run_config.timm_version,
        epochs_scheduled=run_config.effective.get("epochs_scheduled"),
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
