"""JSON output of ``report``: a stable, documented document (``schema_version`` 1.2).

The JSON Schema of the document ships beside this module (``schema/report-1.2.schema.json``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from mnv4_postmortem.analyzer.diagnosis import Diagnosis
from mnv4_postmortem.analyzer.findings import Considered, Fix, _jsonable, symptom_json, to_json_dict
from mnv4_postmortem.analyzer.render.verification import verification_json

SCHEMA_RESOURCE = "schema/report-1.2.schema.json"


def report_dict(diagnosis: Diagnosis) -> dict[str, Any]:
    return _finite({
        "schema_version": diagnosis.schema_version,
        "run": diagnosis.summary.as_dict(),
        "findings": [{**to_json_dict(f), **_visibility(diagnosis, f.rule_id)} for f in diagnosis.findings],
        "differential": list(diagnosis.differential),
        "combined_fix": _fix(diagnosis.combined_fix),
        "considered": [_considered(c) for c in diagnosis.considered],
        # 1.2: symptoms at warning+ that no finding explains, and the accuracy unit read per series
        "unexplained_symptoms": [symptom_json(u) for u in diagnosis.unexplained],
        "accuracy_units": _jsonable(dict(diagnosis.run.config.effective.get("accuracy_units") or {})),
        "segments": {metric: [s.as_json() for s in segments] for metric, segments in diagnosis.segments.items()},
        "warnings": list(diagnosis.warnings),
        "rule_errors": list(diagnosis.rule_errors),
        **({"verification": verification_json(diagnosis.verification)} if diagnosis.verification else {}),
        # issue 19: what the files let the checks judge, and the outcome decided from it (coverage.py, outcome.py)
        **({"coverage": diagnosis.coverage.as_dict()} if diagnosis.coverage is not None else {}),
        **({"outcome": diagnosis.outcome.as_dict()} if diagnosis.outcome is not None else {}),
    })


def _visibility(diagnosis: Diagnosis, rule_id: str) -> dict[str, Any]:
    """Schema 1.2's optional finding fields, when the caller attached a timeline (``report`` does)."""
    seen = diagnosis.timeline.get(rule_id)
    if seen is None:
        return {}
    return {"visible_from_epoch": seen.visible_from_epoch, "predictable_before_training": seen.predictable_before_training}


def _fix(fix: Fix | None) -> dict[str, Any] | None:
    if fix is None:
        return None
    return {"args": _jsonable(dict(fix.args)), "command": fix.command, "note": fix.note or None, "safety": fix.safety}


def render(diagnosis: Diagnosis, *, verbose: bool = False) -> str:
    return json.dumps(report_dict(diagnosis), indent=2)


def schema() -> dict[str, Any]:
    """The JSON Schema every ``report --format json`` document satisfies."""
    from importlib.resources import files

    return json.loads(files("mnv4_postmortem.analyzer.render").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8"))


def _considered(item: Considered) -> dict[str, Any]:
    out = {"rule_id": item.rule_id, "cause": item.cause, "title": item.title, "reason": item.reason}
    if item.outweighed:  # fired, but outweighed by a rival (engine/evaluate.py); absent otherwise (schema 1.2)
        out["outweighed"] = True
    return out


def _finite(value: Any) -> Any:
    """Strict JSON has no NaN/Infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
