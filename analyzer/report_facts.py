"""The facts a rich report shows beside the diagnosis: typed results only, no computation.

Each fact is produced by its owner while the pipeline runs (``pipeline.diagnose`` calls them before it
assembles the :class:`~mnv4_postmortem.analyzer.diagnosis.Diagnosis`): the cited lines (ingest/cited_lines.py),
the config table (ingest/config_rows.py, against the defaults resolved at ingest), the settings the findings
cite and the rule-pack version (engine/provenance.py), the run's own command line (timm/command_line.py), the
configured LR schedule (timm/schedule.py), the logged schedule and the chance levels (the Detection), and the
timm era (timm/version.py). Renderers only read them. This module imports no stage (tests/test_one_pass.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from mnv4_postmortem.analyzer.citations import Citation


@dataclass(frozen=True, slots=True)
class Excerpt:
    """Lines of a cited range as the report's appendix shows them (read by ingest/cited_lines.py)."""

    path: str
    first: int
    last: int
    lines: tuple[tuple[int, str], ...]   # (1-based line number, text); a gap shows as (0, "…")
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ConfigRow:
    """One row of the config table (built by ingest/config_rows.py)."""

    key: str
    value: Any
    default: Any          # timm's default in the run's era; None with has_default False when train.py had none
    has_default: bool
    non_default: bool | None  # differs from timm's default; None when the defaults table has no entry for it
    source: str           # "train.log:6", "args.yaml", "timm default", or how an effective value was derived


@dataclass(frozen=True, slots=True, eq=False)
class ReportFacts:
    excerpts: tuple[tuple[Citation, Excerpt], ...] = ()     # every cited file range, with its lines
    config_rows: tuple[ConfigRow, ...] = ()
    cited_config: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # rule id -> settings it cites
    base_command: str | None = None          # the run's own train.py line (a fix is shown as a diff of it)
    lr_configured: tuple[float, ...] | None = None   # per epoch 0..n-1, per the config
    lr_logged: tuple[tuple[float, ...], tuple[float, ...], str] | None = None  # (x, lr, "epoch"|"step")
    chance_levels: Mapping[str, float] = field(default_factory=dict)  # metric -> a uniform guesser's value (detect's)
    rule_pack_version: str | None = None
    timm_era: str | None = None
    batch_grid: bytes | None = None          # reproduce --show-batch's PNG, when the user attaches one
