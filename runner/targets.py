"""Which findings to verify, and the fix each one is tested with (torch-free).

A finding that fired on the run carries its fix (the rule computed it at the original's scale).
``--finding ID`` may also name any catalog cause or rule id that did NOT fire, to test a hypothesis:
its fix then comes from the same rule file, evaluated on the run as if the rule had fired, so one
owner (the rule) defines what "the fix" is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from mnv4_postmortem.analyzer.diagnosis import Diagnosis as Report
from mnv4_postmortem.analyzer.findings import Finding, Severity
from mnv4_postmortem.analyzer.model import Run
from mnv4_postmortem.analyzer.session import Analyzer, UnknownHypothesis

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


def select_targets(run: Run, report: Report, analyzer: Analyzer, wanted: Sequence[str] = (),
                   all_findings: bool = False) -> list[Target]:
    """--finding IDs (fired or not), --all (warning and above), else the top finding."""
    if wanted:
        return [_target_for(run, report, analyzer, name) for name in dict.fromkeys(wanted)]
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


def _target_for(run: Run, report: Report, analyzer: Analyzer, name: str) -> Target:
    for f in report.findings:
        if name in (f.rule_id, f.cause):
            return _from_finding(f)
    try:
        hypothesis = analyzer.fix_as_if_fired(run, name)  # the engine forces the rule; the rule owns the fix
    except UnknownHypothesis as exc:
        raise TargetError(f"--finding {name!r}: no such cause or rule (causes: {', '.join(exc.causes)})") from None
    return Target(hypothesis.cause if name == hypothesis.cause else name, hypothesis.cause, hypothesis.rule_id,
                  hypothesis.title, False, hypothesis.patch, hypothesis.severity,
                  "hypothesis: this cause did not fire on the run")


def fired_causes(report: Report) -> set[str]:
    return {f.cause for f in report.findings} | {f.rule_id for f in report.findings}
