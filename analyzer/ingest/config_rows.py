"""The run's configuration as a table: each setting's value, timm's default for that era, whether the run
changed it, and where the value came from (the log, args.yaml, or timm's default)."""

from __future__ import annotations

import math
from typing import Any

from mnv4_postmortem.analyzer.model import TrainConfig
from mnv4_postmortem.analyzer.report_facts import ConfigRow

_NO_DEFAULT = object()


def config_rows(config: TrainConfig) -> tuple[ConfigRow, ...]:
    """Every setting of ``config`` beside timm's default of its era (``config.defaults``, resolved at ingest)."""
    defaults = config.defaults
    keys = sorted(set(config.values) | set(config.effective))
    rows = []
    for key in keys:
        value = config.get(key)
        default = defaults.get(key, _NO_DEFAULT)
        has_default = default is not _NO_DEFAULT
        rows.append(ConfigRow(
            key=key,
            value=value,
            default=default if has_default else None,
            has_default=has_default,
            non_default=(not _same(value, default)) if has_default else None,
            source=_source(config, key),
        ))
    return tuple(rows)


def _source(config: TrainConfig, key: str) -> str:
    if key in config.effective_sources:
        return str(config.effective_sources[key])
    if key in config.defaulted:
        return "timm default"
    return config.source.path if config.source is not None else "args.yaml"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (a in ("", None) and b is False) or (b in ("", None) and a is False)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0) or (a != a and b != b)
    if a in ("", None) and b in ("", None):
        return True
    return a == b
