"""The pipeline after ingest: ``diagnose(run, pack) -> Diagnosis``.

Run -> detect -> derive -> namespace -> rules -> ranked findings -> fix command lines -> report facts -> Diagnosis.
This module only wires the stages; each lives in its own package. The facts a rich report shows beside the
findings (``report_facts.ReportFacts``) are produced here by their owners, in the same pass, before the
Diagnosis is assembled: nothing goes back into ingest, detect or the engine after it. Rule-pack loading is the
engine's (``engine.loader.load_pack``), synthetic runs for rule tests are ingest's
(``ingest.synthetic``). ``namespace`` is the same pipeline stopped before the rules, for the rule
test harness (``rules test`` and pytest exercise exactly the production stages).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Mapping

from mnv4_postmortem.analyzer.citations import cited_ranges
from mnv4_postmortem.analyzer.coverage import coverage_of
from mnv4_postmortem.analyzer.detect import Detection, detect
from mnv4_postmortem.analyzer.diagnosis import CurveSegment, Diagnosis, RunSummary
from mnv4_postmortem.analyzer.engine import Evaluation, RulePack, RuleError, evaluate
from mnv4_postmortem.analyzer.engine.provenance import config_keys_cited, pack_version
from mnv4_postmortem.analyzer.features.derived import Derived, derive
from mnv4_postmortem.analyzer.features.namespace import build_namespace
from mnv4_postmortem.analyzer.findings import Finding, Fix, Ranking, make_ranking
from mnv4_postmortem.analyzer.ingest.cited_lines import read_excerpts
from mnv4_postmortem.analyzer.ingest.config_rows import config_rows
from mnv4_postmortem.analyzer.model import Run
from mnv4_postmortem.analyzer.outcome import decide_outcome
from mnv4_postmortem.analyzer.report_facts import ReportFacts
from mnv4_postmortem.analyzer.timm.command_line import train_command
from mnv4_postmortem.analyzer.timm.schedule import configured_lr
from mnv4_postmortem.analyzer.timm.trainers import fix_command
from mnv4_postmortem.analyzer.timm.version import era_of

# The report's appendix shows at most this many cited line ranges.
MAX_EXCERPTS = 60

__all__ = ["diagnose", "namespace", "ranked_findings"]

def diagnose(run: Run, pack: RulePack) -> Diagnosis:
    """Everything a renderer shows about ``run`` under the rules of ``pack``."""
    detection, evaluation, ranking = _ranked(run, pack)
    coverage = coverage_of(run)  # what the files let the checks judge: computed once, shown by every renderer
    findings, command_errors = _with_commands(ranking.findings, run, pack)
    rule_errors = [str(e) for e in pack.errors] + [str(w) for w in evaluation.warnings] + command_errors
    return Diagnosis(
        run=run,
        summary=RunSummary.of(run),
        findings=findings,
        differential=ranking.differential,
        considered=ranking.considered,
        segments=_segments(detection),
        warnings=tuple(str(i) for i in run.issues),
        rule_errors=tuple(rule_errors),
        combined_fix=_combined_command(ranking.combined_fix, run),
        symptoms=evaluation.symptoms,
        unexplained=ranking.unexplained,
        report_facts=_report_facts(run, detection, findings, pack),
        coverage=coverage,
        outcome=decide_outcome(findings, coverage, ranking.unexplained),
    )


def ranked_findings(run: Run, pack: RulePack) -> tuple[Finding, ...]:
    """The findings ``diagnose(run, pack)`` reports, in its order, without the rest of the Diagnosis
    (coverage, report facts, command lines, outcome): what the timeline needs of each replayed prefix.
    Both go through ``_ranked``, so they cannot drift; a test holds the two to the same rule ids on real runs."""
    return _ranked(run, pack)[2].findings


def _ranked(run: Run, pack: RulePack) -> tuple[Detection, Evaluation, Ranking]:
    """Detect, derive, evaluate and rank: the stages ``diagnose`` and ``ranked_findings`` share."""
    detection, derived = _stages(run)
    evaluation = evaluate(pack, build_namespace(run, detection, derived).as_names())
    return detection, evaluation, make_ranking(evaluation.findings, evaluation.considered, evaluation.symptoms)


def namespace(run: Run) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The rule namespace of ``run`` and the metadata fix command lines need (for the rule tests)."""
    detection, derived = _stages(run)
    return build_namespace(run, detection, derived).as_names(), _command_meta(run)


def _stages(run: Run) -> tuple[Detection, Derived]:
    """The statistics every consumer needs, computed once: detection and derived quantities (the recipe,
    num_classes included, was resolved at ingest by ``analyzer/timm/recipe.py``)."""
    return detect(run), derive(run)


def _command_meta(run: Run) -> Mapping[str, Any]:
    # The defaults of the era the config was filled from: a fix command and the config never disagree.
    return {"args": dict(run.config.args), "defaults": dict(run.config.command_defaults),
            "trainer": getattr(run, "trainer", None)}


def _report_facts(run: Run, detection: Detection, findings: tuple[Finding, ...], pack: RulePack) -> ReportFacts:
    """What a rich report shows beside the findings, each from its owner (see ``report_facts.py``)."""
    cited = cited_ranges((evidence.refs for finding in findings for evidence in finding.evidence), MAX_EXCERPTS)
    schedule = detection.schedule
    return ReportFacts(
        excerpts=read_excerpts(run.run_dir, cited),
        config_rows=config_rows(run.config),
        cited_config={f.rule_id: config_keys_cited(pack.get(f.rule_id), f.fix.args if f.fix else ()) for f in findings},
        base_command=_base_command(run),
        lr_configured=configured_lr(run.config, int(run.epochs.index.max()) + 1) if run.n_epochs else None,
        lr_logged=(tuple(schedule.epochs), tuple(schedule.lrs), schedule.source) if schedule is not None else None,
        chance_levels=detection.chance_levels,
        rule_pack_version=pack_version(pack),
        timm_era=era_of(run.timm_version),
    )


def _base_command(run: Run) -> str | None:
    """The run's own train.py line (timm's runs with arguments only): the fixes are shown as diffs of it."""
    if not run.config.args or getattr(run, "trainer", None) is not None:
        return None
    try:
        return train_command(run.config)
    except Exception:  # noqa: BLE001 - a report without the diff is better than no report
        return None


def _render_command(run: Run, patch: Mapping[str, Any]) -> str | None:
    """timm's train.py line for timm's runs; another trainer's own command line (its flag spelling) where it
    has a known CLI; else None: the fix is stated as its settings alone (``Fix.args``)."""
    trainer = getattr(run, "trainer", None)
    if trainer is not None:
        return fix_command(trainer, patch)
    return train_command(run.config, patch)


def _with_commands(findings: tuple[Finding, ...], run: Run, pack: RulePack) -> tuple[tuple[Finding, ...], list[str]]:
    """Each ranked finding's fix gets its train.py command line; a fix whose line cannot be printed keeps its args."""
    out: list[Finding] = []
    errors: list[str] = []
    for finding in findings:
        if finding.fix is None:
            out.append(finding)
            continue
        try:
            command = _render_command(run, finding.fix.args)
        except Exception as exc:  # noqa: BLE001 - keep the fix even when the command cannot be printed
            errors.append(_command_error(pack, finding, exc))
            out.append(finding)
            continue
        out.append(replace(finding, fix=replace(finding.fix, command=command)))
    return tuple(out), errors


def _combined_command(fix: Fix | None, run: Run) -> Fix | None:
    """The combined fix with its train.py line, rendered like every finding's (same args, same era)."""
    if fix is None:
        return None
    try:
        return replace(fix, command=_render_command(run, fix.args))
    except Exception:  # noqa: BLE001 - the merged args stay useful without their command line
        return fix


def _command_error(pack: RulePack, finding: Finding, exc: Exception) -> str:
    rule = pack.get(finding.rule_id)
    line, col = rule.location("fix") if rule is not None else (None, None)
    path = rule.path if rule is not None else finding.rule_id
    message = f"cannot render the train.py command: {exc}"
    return str(RuleError(path, line, col, "fix", message, finding.rule_id, level="warning"))


def _segments(detection: Detection) -> dict[str, tuple[CurveSegment, ...]]:
    return {
        metric: tuple(
            CurveSegment(start=_num(s.x_first), end=_num(s.x_last), unit=s.unit, n=s.n, label=s.label,
                         level=_num(s.level), slope=_num(s.slope), slope_ci=(_num(s.slope_low), _num(s.slope_high)),
                         noise=_num(s.noise))
            for s in segments
        )
        for metric, segments in detection.segments.items()
    }


def _num(value: Any) -> Any:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and abs(value) < 1e15 else round(value, 6)
