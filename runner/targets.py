"""Which findings to verify, and the fix each one is tested with (torch-free).

A finding that fired on the run carries its fix (the rule computed it at the original's scale).
``--finding ID`` may also name any catalog cause or rule id that did NOT fire, to test a hypothesis:
its fix then comes from the same rule file, evaluated on the run as if the rule had fired, so one
owner (the rule) defines what "the fix" is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from mnv4_postmortem.analyzer.diagnose import namespace_for
from mnv4_postmortem.analyzer.engine.evaluate import evaluate_rule
from mnv4_postmortem.analyzer.engine.expr import RuleEvaluator, compile_expr
from mnv4_postmortem.analyzer.engine.loader import RulePack
from mnv4_postmortem.analyzer.findings import Finding, Severity
from mnv4_postmortem.analyzer.model import Run
from mnv4_postmortem.analyzer.report import Report

__all__ = ["Target", "select_targets", "TargetError"]


class TargetError(ValueError):
    """A --finding that names nothing in the catalog, or a selection with nothing to test."""


@dataclass(frozen=True, slots=True)
class Target:
    id: str                      # what the user asked for / the finding's cause
    cause: str
    rule_id: str
    title: str
    fired: bool                  # did it fire on the original run?
    patch: Mapping[str, Any] | None
    severity: str = ""
    note: str = ""


def select_targets(run: Run, report: Report, pack: RulePack, wanted: Sequence[str] = (), all_findings: bool = False) -> list[Target]:
    """--finding IDs (fired or not), --all (warning and above), else the top finding."""
    if wanted:
        return [_target_for(run, report, pack, name) for name in dict.fromkeys(wanted)]
    findings = list(report.findings)
    if all_findings:
        findings = [f for f in findings if f.severity >= Severity.parse("warning")]
        # one target per cause: the highest-ranked rule speaks for it
        seen: set[str] = set()
        findings = [f for f in findings if not (f.cause in seen or seen.add(f.cause))]
    else:
        findings = findings[:1]
    if not findings:
        raise TargetError("the analyzer found nothing to verify on this run; name a hypothesis with --finding CAUSE")
    return [_from_finding(f) for f in findings]


def _from_finding(f: Finding) -> Target:
    return Target(f.cause, f.cause, f.rule_id, f.title, True, dict(f.fix.args) if f.fix else None,
                  f.severity.label, f.fix.note if f.fix else "")


def _target_for(run: Run, report: Report, pack: RulePack, name: str) -> Target:
    for f in report.findings:
        if name in (f.rule_id, f.cause):
            return _from_finding(f)
    rules = [r for r in pack.rules if name in (r.id, r.cause)]
    if not rules:
        causes = ", ".join(sorted(set(pack.causes) | {r.cause for r in pack.rules}))
        raise TargetError(f"--finding {name!r}: no such cause or rule (causes: {causes})")
    rule = next((r for r in rules if r.fix is not None), rules[0])
    patch = _fix_as_if_fired(run, rule)
    return Target(rule.cause if name == rule.cause else name, rule.cause, rule.id, rule.title, False, patch,
                  rule.severity.label, "hypothesis: this cause did not fire on the run")


def _fix_as_if_fired(run: Run, rule) -> Mapping[str, Any] | None:
    """The rule's fix evaluated on the run with its condition forced true."""
    if rule.fix is None:
        return None
    forced = replace(rule, when=compile_expr("True"), epochs=None, for_epochs=None)
    namespace, meta = namespace_for(run)
    warnings: list = []
    result = evaluate_rule(forced, RuleEvaluator(namespace), dict(namespace), warnings, meta)
    if isinstance(result, Finding) and result.fix is not None:
        return dict(result.fix.args)
    return None


def fired_causes(report: Report) -> set[str]:
    return {f.cause for f in report.findings} | {f.rule_id for f in report.findings}
