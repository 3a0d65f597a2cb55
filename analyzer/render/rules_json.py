"""``rules list --format json``: the rule pack as a JSON list, in pack order."""

from __future__ import annotations

import json
from typing import Any

from mnv4_postmortem.analyzer.render.rules_table import rows


def render(pack: Any, *, verbose: bool = False) -> str:
    return json.dumps(rows(pack), indent=2)
