"""Facts a rich report shows beside the diagnosis, each computed by the module that owns it.

This module only gathers them (renderers never compute): the excerpts of cited lines (ingest), the config
table with defaults and sources (ingest) and the settings the findings cite (engine), the run's own
command line (engine), the configured and the logged LR schedules (detect), the rule-pack version (engine)
and the timm era (ingest's defaults table). A verification slot is kept for the runner (``None`` until a
reproduction is attached).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from mnv4_postmortem.analyzer.citations import Citation, group
from mnv4_postmortem.analyzer.detect import Detection
from mnv4_postmortem.analyzer.timm.schedule import configured_lr
from mnv4_postmortem.analyzer.detect.metrics import chance_value
from mnv4_postmortem.analyzer.engine.loader import RulePack
from mnv4_postmortem.analyzer.timm.command_line import render_train_command
from mnv4_postmortem.analyzer.engine.provenance import config_keys_cited, pack_version
from mnv4_postmortem.analyzer.findings import Finding
from mnv4_postmortem.analyzer.ingest.config_rows import ConfigRow, config_rows
from mnv4_postmortem.analyzer.ingest.cited_lines import Excerpt, read_excerpt
from mnv4_postmortem.analyzer.timm.defaults import command_defaults
from mnv4_postmortem.analyzer.timm.version import era_of
from mnv4_postmortem.analyzer.model import Run

MAX_EXCERPTS = 60


@dataclass(frozen=True, slots=True, eq=False)
class ReportFacts:
    excerpts: tuple[tuple[Citation, Excerpt], ...] = ()     # every cited file range, with its lines
    config_rows: tuple[ConfigRow, ...] = ()
    cited_config: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # rule id -> settings it cites
    base_command: str | None = None          # the run's own train.py line (a fix is shown as a diff of it)
    lr_configured: tuple[float, ...] | None = None   # per epoch 0..n-1, per the config
    lr_logged: tuple[tuple[float, ...], tuple[float, ...], str] | None = None  # (x, lr, "epoch"|"step")
    chance_levels: Mapping[str, float] = field(default_factory=dict)  # metric -> a uniform guesser's value
    rule_pack_version: str | None = None
    timm_era: str | None = None
    batch_grid: bytes | None = None          # reproduce --show-batch's PNG, when the user attaches one


def build_report_facts(run: Run, detection: Detection, findings: Sequence[Finding], pack: RulePack) -> ReportFacts:
    return ReportFacts(
        excerpts=_excerpts(run, findings),
        config_rows=config_rows(run.config, run.timm_version),
        cited_config={f.rule_id: config_keys_cited(pack.get(f.rule_id), f.fix.args if f.fix else ()) for f in findings},
        base_command=_base_command(run),
        lr_configured=configured_lr(run.config, int(run.epochs.index.max()) + 1) if run.n_epochs else None,
        lr_logged=_lr_logged(detection),
        chance_levels=_chance_levels(run, detection),
        rule_pack_version=pack_version(pack),
        timm_era=era_of(run.timm_version),
    )


def _excerpts(run: Run, findings: Sequence[Finding]) -> tuple[tuple[Citation, Excerpt], ...]:
    seen: dict[Citation, Excerpt] = {}
    for finding in findings:
        for evidence in finding.evidence:
            for citation in group(evidence.refs):
                if citation.first is None or citation in seen or len(seen) >= MAX_EXCERPTS:
                    continue
                seen[citation] = read_excerpt(run.run_dir, citation.path, citation.first, citation.last)
    return tuple(seen.items())


def _base_command(run: Run) -> str | None:
    if not run.config.args or getattr(run, "trainer", None) is not None:  # another trainer: no train.py line
        return None
    try:
        return render_train_command(dict(run.config.args), {}, command_defaults(run.timm_version))
    except Exception:  # noqa: BLE001 - a report without the diff is better than no report
        return None


def _lr_logged(detection: Detection):
    schedule = detection.schedule
    if schedule is None:
        return None
    return (tuple(schedule.epochs), tuple(schedule.lrs), schedule.source)


def _chance_levels(run: Run, detection: Detection) -> dict[str, float]:
    levels = {c: chance_value(c, detection.num_classes) for c in run.epochs.columns}
    return {c: v for c, v in levels.items() if v is not None}
