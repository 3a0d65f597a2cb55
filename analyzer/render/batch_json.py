"""``batch --format json``: JSON Lines, one ``report --format json`` document per run."""

from __future__ import annotations

import json

from mnv4_postmortem.analyzer.diagnosis import Diagnosis
from mnv4_postmortem.analyzer.render.json_render import report_dict


def render(diagnosis: Diagnosis, *, verbose: bool = False) -> str:
    return json.dumps(report_dict(diagnosis), default=str)


def render_error(path: str, message: str) -> str:
    return json.dumps({"run": {"path": path}, "error": message})
