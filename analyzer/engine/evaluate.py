"""Run a rule pack over one run's namespace: ``when`` -> ``epochs`` -> ``for`` -> confidence ->
evidence -> fix.

The namespace maps ``config``, ``derived``, ``series`` and ``events`` to plain Python objects
(nested mappings and/or objects with attributes); see :mod:`.expr` for how missing values behave.

A failure inside one rule never stops the others. It becomes a ``RuleError`` with
``level="warning"`` naming the rule and field:

* ``when`` / ``epochs`` / ``for`` fail: the rule does not fire;
* ``confidence`` fails or is missing: the default 0.5 is used;
* one evidence line fails: that line is left out;
* a fix argument fails or comes out missing: the finding keeps no fix (a half-computed command
  would be worse than none).

``pipeline_meta`` may hold ``args`` (the run's args.yaml mapping) and ``defaults`` (timm's
defaults for that version); with ``args`` each fix also gets its train.py command line.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mnv4_postmortem.analyzer.findings import Considered, Evidence, Finding, Fix, Severity, Symptom, weighing_strength
from mnv4_postmortem.analyzer.timm.command_line import render_train_command
from mnv4_postmortem.analyzer.engine.expr import EvalError, Expr, RuleEvaluator, get_member, is_absent, is_missing
from mnv4_postmortem.analyzer.engine.loader import RulePack
from mnv4_postmortem.analyzer.engine.schema import DEFAULT_BAR, DEFAULT_CONFIDENCE, Rule, RuleError


@dataclass(frozen=True, slots=True)
class Evaluation:
    findings: tuple[Finding, ...]
    considered: tuple[Considered, ...]
    warnings: tuple[RuleError, ...]
    symptoms: tuple[Symptom, ...] = ()  # every symptom rule that fired, in pack order


# A symptom's strength is capped so that one extreme curve cannot carry a cause past any amount of evidence
# against it: three margins past the threshold is already unmistakable.
MAX_STRENGTH = 3.0
# Confidence from a scored cause's total: a logistic in (score - bar), 0.5 exactly at the bar, each further
# unit (one more symptom at its margin, or one decisive signal) multiplying the odds by e^2 (~7). Capped below
# 1: no curve shape rules out every other explanation.
CONFIDENCE_SLOPE = 2.0
MAX_CONFIDENCE = 0.97


class _RuleFailed(Exception):
    """This rule cannot fire on this run; the warning is already recorded."""


@dataclass
class _Context:
    rule: Rule
    evaluator: RuleEvaluator
    template_context: Mapping[str, Any]
    warnings: list[RuleError]

    def warn(self, field_name: str, message: str) -> None:
        line, col = self.rule.location(field_name.split("[")[0].split(".")[0])
        self.warnings.append(
            RuleError(self.rule.path, line, col, field_name, message, self.rule.id, level="warning")
        )

    def value(self, expr: Expr, field_name: str) -> Any:
        try:
            return expr.evaluate(self.evaluator)
        except Exception as exc:  # noqa: BLE001 - namespace objects are other people's code
            detail = str(exc) if isinstance(exc, EvalError) else f"{type(exc).__name__}: {exc}"
            self.warn(field_name, f"evaluation failed: {detail}")
            raise _RuleFailed from None

    def truth(self, expr: Expr, field_name: str) -> bool:
        result = self.value(expr, field_name)
        try:
            return bool(result)
        except Exception as exc:  # noqa: BLE001 - e.g. the truth value of an array is ambiguous
            self.warn(field_name, f"not a yes/no value: {exc}")
            raise _RuleFailed from None

    def render(self, template: Any, field_name: str) -> tuple[str, tuple[str, ...]] | None:
        """The rendered line; None when it failed (warned) or would print missing data (silently left out)."""
        try:
            return template.render(self.template_context)
        except Exception as exc:  # noqa: BLE001 - a broken evidence line must not hide the finding
            self.warn(field_name, f"rendering failed: {type(exc).__name__}: {exc}")
            return None


def _epoch_pair(value: Any) -> tuple[int, int] | None:
    """``[first, last]`` (or something with ``epochs``) as a pair of ints; None when unknown."""
    if is_absent(value):
        return None
    if isinstance(value, (str, bytes)):
        raise ValueError(f"expected [first, last] epochs, got {value!r:.80}")
    if isinstance(value, Mapping) or not hasattr(value, "__len__"):
        inner = get_member(value, "epochs")  # a segment-like object: use its epochs
        if is_absent(inner):
            raise ValueError(f"expected [first, last] epochs, got {value!r:.80}")
        return _epoch_pair(inner)
    items = list(value)
    if len(items) != 2:
        raise ValueError(f"expected [first, last] epochs, got {len(items)} values")
    if any(is_missing(v) for v in items):
        return None
    first, last = (float(v) for v in items)
    if not (math.isfinite(first) and math.isfinite(last)) or first > last:
        raise ValueError(f"expected finite epochs with first <= last, got [{first}, {last}]")
    return int(round(first)), int(round(last))


def _epochs(ctx: _Context) -> tuple[int, int] | None:
    if ctx.rule.epochs is None:
        return None
    value = ctx.value(ctx.rule.epochs, "epochs")
    try:
        return _epoch_pair(value)
    except (TypeError, ValueError) as exc:
        ctx.warn("epochs", str(exc))
        raise _RuleFailed from None


def _confidence(ctx: _Context) -> float:
    spec = ctx.rule.confidence
    if not isinstance(spec, Expr):
        return float(spec)
    try:
        value = ctx.value(spec, "confidence")
    except _RuleFailed:
        return DEFAULT_CONFIDENCE
    try:
        number = float(value)
    except (TypeError, ValueError):
        if value is not None:
            ctx.warn("confidence", f"expected a number, got {value!r:.80}")
        return DEFAULT_CONFIDENCE
    if math.isnan(number):
        return DEFAULT_CONFIDENCE
    return min(1.0, max(0.0, number))


def _evidence(ctx: _Context) -> tuple[Evidence, ...]:
    lines = []
    for i, template in enumerate(ctx.rule.evidence):
        rendered = ctx.render(template, f"evidence[{i}]")
        if rendered is not None:
            lines.append(Evidence(text=rendered[0], refs=rendered[1]))
    return tuple(lines)


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def _fix(ctx: _Context, pipeline_meta: Mapping[str, Any] | None) -> Fix | None:
    spec = ctx.rule.fix
    if spec is None:
        return None
    patch: dict[str, Any] = {}
    for key, value in spec.args.items():
        if isinstance(value, Expr):
            try:
                value = _plain(ctx.value(value, f"fix.args.{key}"))
            except _RuleFailed:
                return None
            if is_missing(value):   # the run lacks the data the fix is computed from: no fix, as for facts
                return None
            if isinstance(value, float) and not math.isfinite(value):
                ctx.warn(f"fix.args.{key}", f"evaluated to {value}; no fix offered")
                return None
        patch[key] = value
    command = None
    args = (pipeline_meta or {}).get("args")
    if args is not None:
        try:
            command = render_train_command(args, patch, (pipeline_meta or {}).get("defaults") or {})
        except Exception as exc:  # noqa: BLE001 - keep the fix even when the command cannot be printed
            ctx.warn("fix", f"cannot render the train.py command: {exc}")
    return Fix(args=patch, command=command, note=spec.note, safety=spec.safety)


def _facts(ctx: _Context) -> dict[str, Any]:
    """The rule's ``facts`` evaluated; a fact that is missing or fails is left out (the finding stands)."""
    facts: dict[str, Any] = {}
    for name, expr in ctx.rule.facts.items():
        try:
            value = _plain(ctx.value(expr, f"facts.{name}"))
        except _RuleFailed:
            continue
        if is_missing(value) or value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue
        facts[name] = value
    return facts


def _considered(ctx: _Context) -> Considered | None:
    rule = ctx.rule
    if rule.considered is None:
        return None
    try:
        if not ctx.truth(rule.considered, "considered"):
            return None
    except _RuleFailed:
        return None
    reason = ctx.render(rule.ruled_out, "ruled_out") if rule.ruled_out is not None else None
    return Considered(rule.id, rule.cause, rule.title, reason[0] if reason else None)


def _strength(ctx: _Context) -> float:
    spec = ctx.rule.strength
    if not isinstance(spec, Expr):
        return float(spec)
    try:
        value = float(ctx.value(spec, "strength"))
    except (_RuleFailed, TypeError, ValueError):
        return 1.0  # the symptom holds; only its grade is unknown: at its margin
    return 1.0 if math.isnan(value) else min(MAX_STRENGTH, max(0.0, value))


def evaluate_symptom(rule: Rule, evaluator: RuleEvaluator, template_context: Mapping[str, Any],
                     warnings: list[RuleError]) -> Symptom | None:
    """One symptom rule on one namespace: the Symptom when it fires (strength, epochs, evidence)."""
    ctx = _Context(rule, evaluator, template_context, warnings)
    try:
        if not ctx.truth(rule.when, "when"):
            return None
        epochs = _epochs(ctx)
        if rule.for_epochs is not None and (epochs is None or epochs[1] - epochs[0] + 1 < rule.for_epochs):
            return None
    except _RuleFailed:
        return None
    return Symptom(id=rule.id, title=rule.title, severity=rule.severity, strength=_strength(ctx), epochs=epochs,
                   evidence=_evidence(ctx), candidates=rule.candidates, tell_apart=rule.tell_apart)


@dataclass(frozen=True, slots=True)
class _Score:
    total: float
    explained: tuple[Symptom, ...]
    lines: tuple[Evidence, ...]
    against: tuple[str, ...]
    signals: float = 0.0  # the signals' net weight (minus predicted-absent symptoms seen): what tells this cause apart


def _signal_line(ctx: _Context, index: int) -> str:
    signal = ctx.rule.signals[index]
    text = ctx.render(signal.text, f"signals[{index}].text") if signal.text is not None else None
    head = "for" if signal.weight > 0 else "against"
    body = text[0] if text else signal.why
    return f"{head} ({signal.weight:+g}): {body}" + (f" [{signal.why}]" if text else "")


def _score(ctx: _Context, fired: Mapping[str, Symptom]) -> _Score:
    """Explained symptoms' strengths + the weights of the signals that hold - predicted-absent symptoms seen.
    A signal that cannot be evaluated, or reads missing data, counts neither way."""
    rule = ctx.rule
    explained = tuple(fired[s] for s in rule.symptoms if s in fired)
    # Info-level symptoms make a cause eligible but add nothing (Symptom.weighs).
    total = weighing_strength(explained)
    lines = [Evidence(f"explains the symptom: {s.title} (strength {s.strength:.2f}"
                      + (f", epochs {s.epochs[0]}-{s.epochs[1]}" if s.epochs else "") + ")",
                      tuple(r for e in s.evidence for r in e.refs)) for s in explained]
    against: list[str] = []
    signals = 0.0
    for s in (fired[s] for s in rule.absent if s in fired):
        total -= s.strength
        signals -= s.strength
        line = f"against: {s.title} is seen, which {rule.cause} predicts absent"
        lines.append(Evidence(line))
        against.append(line.removeprefix("against: "))
    for i, signal in enumerate(rule.signals):
        try:
            value = ctx.value(signal.when, f"signals[{i}].when")
        except _RuleFailed:
            continue
        if is_missing(value) or not value:
            continue
        total += signal.weight
        signals += signal.weight
        line = _signal_line(ctx, i)
        lines.append(Evidence(line))
        if signal.weight < 0:
            against.append(line.split(": ", 1)[1])
    return _Score(total, explained, tuple(lines), tuple(against), signals)


def _severity_of(rule: Rule, score: _Score, bar: float) -> Severity:
    """A scored cause's severity follows its own evidence, not the symptom it claims (issue 13).

    A symptom says that one of its candidate causes holds; the signals (config and log evidence for and
    against) say which one. So:
    - no symptom at warning or above of its own (a config smell, at most an info-level curve sign) and
      evidence only at its bar (confidence one half): info. Only the config speaks for it, and a heavy
      recipe is as often a healthy published one as a problem; what the report calls a warning is something
      the curves show or evidence past the bar;
    - signals net positive (the evidence singles this cause out): as severe as the worst symptom it explains,
      when that is above the rule's own severity (a warning-level cause that holds a run at the prior is an
      error for that run);
    - signals net zero (no config or log evidence either way; missing evidence counts neither way): the
      rule's own severity;
    - signals net negative (more evidence against it than for it): a candidate the symptom leaves open, not
      the diagnosis: at most warning.
    """
    if not any(s.weighs for s in score.explained) and score.total <= bar:
        return Severity.INFO
    if score.signals > 0:
        return max([rule.severity] + [s.severity for s in score.explained])
    if score.signals < 0:
        return min(rule.severity, Severity.WARNING)
    return rule.severity


def _bar_of(rule: Rule) -> float:
    """A scored cause's bar: the loader fills in schema's DEFAULT_BAR for a rule with signals and no bar."""
    return float(rule.bar if rule.bar is not None else DEFAULT_BAR)


def _confidence_of(score: float, bar: float) -> float:
    return min(MAX_CONFIDENCE, 1.0 / (1.0 + math.exp(-CONFIDENCE_SLOPE * (score - bar))))


def _union(epochs: list[tuple[int, int]]) -> tuple[int, int] | None:
    return (min(e[0] for e in epochs), max(e[1] for e in epochs)) if epochs else None


def evaluate_scored(rule: Rule, evaluator: RuleEvaluator, template_context: Mapping[str, Any],
                    warnings: list[RuleError], fired: Mapping[str, Symptom],
                    pipeline_meta: Mapping[str, Any] | None = None) -> Finding | Considered | None:
    """A scored cause: fires when ``when`` holds and its symptoms plus signals reach its bar; the confidence
    comes from that total. Below the bar with a symptom of its own, it is considered, with what counted against."""
    ctx = _Context(rule, evaluator, template_context, warnings)
    try:
        if not ctx.truth(rule.when, "when"):
            return _considered(ctx)
        score = _score(ctx, fired)
        epochs = _epochs(ctx) if rule.epochs is not None else _union([s.epochs for s in score.explained if s.epochs])
    except _RuleFailed:
        return None
    bar = _bar_of(rule)
    if rule.symptoms and not score.explained:
        # A cause defined by what it explains is not named when none of it is seen (config alone is a
        # latent cause's business, with its own rule).
        return _considered(ctx)
    if score.total < bar or (rule.for_epochs is not None and (epochs is None or epochs[1] - epochs[0] + 1 < rule.for_epochs)):
        if not score.explained:
            return _considered(ctx)
        reason = f"its evidence totals {score.total:.2f}, under its bar {bar:g}"
        if score.against:
            reason += "; against: " + "; ".join(score.against)
        return Considered(rule.id, rule.cause, rule.title, reason)
    ruled_out = ctx.render(rule.ruled_out, "ruled_out") if rule.ruled_out is not None else None
    strong = [s for s in score.explained if s.weighs]
    severity = _severity_of(rule, score, bar)
    return Finding(
        rule_id=rule.id, cause=rule.cause, severity=severity, confidence=_confidence_of(score.total, bar),
        title=rule.title, evidence=_evidence(ctx) + score.lines, epochs=epochs, fix=_fix(ctx, pipeline_meta),
        specificity=rule.specificity, explains=rule.explains, ruled_out=ruled_out[0] if ruled_out else None,
        role=rule.role, facts=_facts(ctx), symptoms=tuple(s.id for s in score.explained),
        strength=weighing_strength(strong), score=score.total, own_symptom=bool(strong),
        against=score.against,
    )


def evaluate_rule(
    rule: Rule,
    evaluator: RuleEvaluator,
    template_context: Mapping[str, Any],
    warnings: list[RuleError],
    pipeline_meta: Mapping[str, Any] | None = None,
) -> Finding | Considered | None:
    """One rule on one namespace: a Finding, a Considered (did not fire but was suspected), or None."""
    ctx = _Context(rule, evaluator, template_context, warnings)
    try:
        fired = ctx.truth(rule.when, "when")
        epochs = _epochs(ctx) if fired else None
        if fired and rule.for_epochs is not None:
            fired = epochs is not None and epochs[1] - epochs[0] + 1 >= rule.for_epochs
    except _RuleFailed:
        return None
    if not fired:
        return _considered(ctx)
    ruled_out = ctx.render(rule.ruled_out, "ruled_out") if rule.ruled_out is not None else None
    return Finding(
        rule_id=rule.id,
        cause=rule.cause,
        severity=rule.severity,
        confidence=_confidence(ctx),
        title=rule.title,
        evidence=_evidence(ctx),
        epochs=epochs,
        fix=_fix(ctx, pipeline_meta),
        specificity=rule.specificity,
        explains=rule.explains,
        ruled_out=ruled_out[0] if ruled_out else None,
        role=rule.role,
        facts=_facts(ctx),
    )


def _symptom_record(symptom: Symptom) -> dict[str, Any]:
    first, last = symptom.epochs if symptom.epochs else (None, None)
    return {"strength": symptom.strength, "epochs": symptom.epochs, "first_epoch": first, "last_epoch": last,
            "severity": symptom.severity.label, "title": symptom.title}


def _claimed(finding: Finding, rule: Rule, fired: Mapping[str, Symptom]) -> Finding:
    """A ``when``-only cause that lists ``symptoms`` claims the fired ones (it reads the curves itself)."""
    claimed = tuple(s for s in rule.symptoms if s in fired)
    if not claimed:
        return finding
    return replace(finding, symptoms=claimed, strength=weighing_strength(fired[s] for s in claimed))


def evaluate(
    pack: RulePack | Iterable[Rule],
    namespace: Mapping[str, Any],
    *,
    pipeline_meta: Mapping[str, Any] | None = None,
) -> Evaluation:
    """Every rule of ``pack`` on ``namespace``: findings (in pack order), considered rules, warnings."""
    rules: Sequence[Rule] = pack.rules if isinstance(pack, RulePack) else tuple(pack)
    evaluator = RuleEvaluator(namespace)
    template_context = dict(namespace)
    findings: list[Finding] = []
    considered: list[Considered] = []
    warnings: list[RuleError] = []
    # Symptoms first: they read the curves alone, and the causes read them (``symptoms.<id>``).
    symptoms = [s for s in (evaluate_symptom(r, evaluator, template_context, warnings) for r in rules if r.is_symptom) if s]
    fired = {s.id: s for s in symptoms}
    # ``symptoms.<id>`` with the id's dashes as underscores (an expression name cannot hold a dash).
    names = dict(namespace, symptoms={s.id.replace("-", "_"): _symptom_record(s) for s in symptoms})
    evaluator = RuleEvaluator(names)
    template_context = dict(names)
    for rule in rules:
        if rule.is_symptom:
            continue
        if rule.scored:
            result = evaluate_scored(rule, evaluator, template_context, warnings, fired, pipeline_meta)
        else:
            result = evaluate_rule(rule, evaluator, template_context, warnings, pipeline_meta)
            if isinstance(result, Finding):
                result = _claimed(result, rule, fired)
        if isinstance(result, Finding):
            findings.append(result)
        elif isinstance(result, Considered):
            considered.append(result)
    bars = {r.id: _bar_of(r) for r in rules if r.scored}
    findings = _share_symptoms(findings, fired, bars)
    outweighed = [f for f in findings if f.rule_id in bars and f.score is not None and f.confidence < OUTWEIGHED]
    considered += [_outweighed(f) for f in outweighed]
    findings = [f for f in findings if not any(f is o for o in outweighed)]
    return Evaluation(tuple(findings), tuple(considered), tuple(warnings), tuple(symptoms))


# A scored cause whose share of its symptom leaves it under 1 chance in 20 (odds 1:19, the conventional level
# at which an alternative is rejected) is outweighed by a rival that claims the same symptom: the differential
# names it, with why, instead of a finding (a finding stated at 0.00 would read as a contradiction).
OUTWEIGHED = 0.05


def _outweighed(finding: Finding) -> Considered:
    reason = (f"another cause that explains the same symptom has evidence that outweighs it (its share leaves "
              f"confidence {finding.confidence:.2f})")
    if finding.against:
        reason += "; against: " + "; ".join(finding.against)
    return Considered(finding.rule_id, finding.cause, finding.title, reason, outweighed=True)


def _share_symptoms(findings: list[Finding], fired: Mapping[str, Symptom], bars: Mapping[str, float]) -> list[Finding]:
    """A scored cause's stated confidence when other causes claim the same symptom (issue 13's calibration).

    A symptom is evidence that one of the causes that claim it holds, not that each of them does. So the
    confidence of a scored cause is the logistic of its evidence total (as for a cause no other claims) times
    its share of its strongest symptom among the distinct causes whose findings claim that symptom. The share
    follows the signals, the evidence that tells the claimants apart, at the same rate as the logistic: each
    unit of net signal weight multiplies a claimant's odds by e^2 (a cause with no scored rule counts 0). With
    one claimant the share is 1 and the mapping is the plain logistic. Firing, severity and ranking still read
    the whole strength (``score``, ``strength``); only the stated confidence is shared.
    Checked on the labelled runs and the public dev cases (bench/bench_calibration.py), never on the holdout:
    unshared, causes that fired on a symptom another cause also claimed, with more evidence against them than
    for them, were stated at 0.73-0.80 and were right in 5 of 9.
    """
    signals: dict[str, float] = {}
    claimants: dict[str, set[str]] = {}
    for finding in findings:
        for symptom_id in finding.symptoms:
            claimants.setdefault(symptom_id, set()).add(finding.cause)
        if finding.score is not None:
            net = finding.score - finding.strength
            signals[finding.cause] = max(signals.get(finding.cause, net), net)
    out = []
    for finding in findings:
        strong = [fired[s] for s in finding.symptoms if s in fired and fired[s].weighs]
        if finding.score is None or finding.rule_id not in bars or not strong:
            out.append(finding)
            continue
        main = max(strong, key=lambda s: s.strength)
        weights = {c: math.exp(CONFIDENCE_SLOPE * signals.get(c, 0.0)) for c in claimants[main.id]}
        share = weights[finding.cause] / sum(weights.values())
        out.append(replace(finding, confidence=_confidence_of(finding.score, bars[finding.rule_id]) * share))
    return out


def evaluate_rules(
    pack: RulePack | Iterable[Rule],
    namespace: Mapping[str, Any],
    *,
    pipeline_meta: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """The findings of :func:`evaluate` (unranked; rank with ``findings.rank``)."""
    return list(evaluate(pack, namespace, pipeline_meta=pipeline_meta).findings)


__all__ = ["Evaluation", "evaluate", "evaluate_rule", "evaluate_rules", "evaluate_scored", "evaluate_symptom"]
