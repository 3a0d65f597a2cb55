"""Which findings to verify, and the fix each one is tested with (torch-free).

A finding that fired on the run carries its fix (the rule computed it at the original's scale).
``--finding ID`` may also name any catalog cause or rule id that did NOT fire, to test a hypothesis:
its fix then comes from the same rule file, evaluated on the run as if the rule had fired, so one
owner (the rule) defines what "the fix" is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from mnv4_postmortem.analyzer.diagnosis import Diagnosis as Report
from mnv4_postmortem.analyzer.findings import Finding, Severity
from mnv4_postmortem.analyzer.model import Run
from mnv4_postmortem.analyzer.session import Analyzer, UnknownHypothesis

__all__ = ["Target", "select_targets", "TargetError", "hold_to_direction", "DIRECTION_STEP"]

# When a treatment would move a setting against the cause's direction (a hypothesis' rule fix computed
# for a run where the cause's premise does not hold: "lr-too-low" at lr 3.0 gives the typical LR, a cut),
# the treatment moves it one order of magnitude the asserted way instead: the scale the LR rules reason in
# (lr-too-high's 10x typical, lr-too-low's 1/20), so the arm tests the cause's claim itself.
DIRECTION_STEP = 10.0


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
    direction: str = ""          # how the treatment moves each setting the cause is about (the plan prints it)
    untestable: str = ""         # why no treatment can move the setting the way the cause asserts


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


def hold_to_direction(target: Target, original: Mapping[str, Any], treatments: Mapping[str, Mapping[str, str]]) -> Target:
    """The target with its treatment moving the settings the way its cause asserts (catalog ``treatment``).

    ``original``: the run's effective settings. A setting the patch moves against the asserted way is moved
    ``DIRECTION_STEP`` times the asserted way instead (or, when it cannot move, e.g. lower than 0, left as
    run). When no setting then moves the asserted way, the settings that can move are stepped; with none
    left, the target is untestable: the cause cannot hold here (no warmup to shorten, nothing to lower).
    """
    wanted = treatments.get(target.cause)
    if not wanted or not target.patch:
        return target
    patch, notes, moved = dict(target.patch), {}, []
    still: list[str] = []
    for key, way in wanted.items():
        before, proposed = _number(original.get(key)), _number(patch.get(key))
        if before is None:
            if key in patch:
                notes[key] = f"{key} -> {patch[key]} (the run does not record {key}: direction not checked)"
            continue
        if proposed is not None and _moves(before, proposed, way):
            notes[key] = f"{key} {before:g} -> {proposed:g}: {way}, as {target.cause} asserts"
            moved.append(key)
        elif proposed is not None and proposed != before:
            rule_said = f"the rule's fix gives {proposed:g}, {'lower' if proposed < before else 'higher'}"
            if _can_move(before, way):
                patch[key] = _step(before, way, original.get(key))
                notes[key] = (f"{key} {before:g} -> {_number(patch[key]):g}: {way}, as {target.cause} asserts ({rule_said}; "
                              f"moved {DIRECTION_STEP:g}x the asserted way instead)")
                moved.append(key)
            else:
                patch[key] = original.get(key)
                notes[key] = f"{key} stays {before:g} ({rule_said}, against {target.cause}; it cannot go {way})"
        else:
            still.append(key)
    if not moved:
        for key in [k for k in still if k in patch] or still:
            before, way = _number(original.get(key)), wanted[key]
            if _can_move(before, way):
                patch[key] = _step(before, way, original.get(key))
                notes[key] = (f"{key} {before:g} -> {_number(patch[key]):g}: {way}, as {target.cause} asserts (the rule's "
                              f"fix leaves it; moved {DIRECTION_STEP:g}x the asserted way)")
                moved.append(key)
    direction = "; ".join(notes[k] for k in wanted if k in notes)
    if not moved:
        settings = ", ".join(f"{k}={original.get(k)}" for k in wanted if k in original)
        why = (f"{target.cause} asserts {', '.join(f'{k} should go {w}' for k, w in wanted.items())}, and none can "
               f"({settings or 'the run records none of them'}): the cause cannot hold on this run")
        return replace(target, patch=patch, direction=direction, untestable=why)
    return replace(target, patch=patch, direction=direction)


def _can_move(before: float | None, way: str) -> bool:
    return before is not None and (before > 0 if way == "lower" else True) and not (way == "higher" and before == 0)


def _step(before: float, way: str, raw: Any) -> Any:
    stepped = before * DIRECTION_STEP if way == "higher" else before / DIRECTION_STEP
    if isinstance(raw, int) and not isinstance(raw, bool):
        return int(stepped)
    return float(f"{stepped:.6g}")


def _moves(before: float, after: float, way: str) -> bool:
    return after < before if way == "lower" else after > before


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
