"""JSON output of ``report``: a stable, documented document (``schema_version``)."""

from __future__ import annotations

import json
import math
from typing import Any

from mnv4_postmortem.analyzer.findings import _jsonable, to_json_dict
from mnv4_postmortem.analyzer.report import Report


def report_dict(view: Report) -> dict[str, Any]:
    return {
        "schema_version": view.schema_version,
        "run": view.run_info,
        "findings": [to_json_dict(f) for f in view.findings],
        "differential": list(view.differential),
        "combined_fix": (
            {"args": _jsonable(dict(view.combined_fix.args)), "command": view.combined_fix.command,
             "note": view.combined_fix.note}
            if view.combined_fix is not None else None
        ),
        "segments": view.segments,
        "warnings": list(view.warnings),
        "rule_errors": list(view.rule_errors),
    }


def render_json(view: Report) -> str:
    return json.dumps(_finite(report_dict(view)), indent=2)


def _finite(value: Any) -> Any:
    """Strict JSON has no NaN/Infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
