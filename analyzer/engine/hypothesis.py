"""A rule evaluated as if it had fired: the fix a hypothesis would be tested with.

``reproduce --finding CAUSE`` may name a cause that did not fire on the run. Its fix still comes from
the rule that owns it, evaluated on the run's namespace with its conditions forced true, so the rule
file stays the one definition of "the fix". How a rule is forced is the engine's business; callers go
through ``Analyzer.fix_as_if_fired``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from mnv4_postmortem.analyzer.engine.evaluate import evaluate_rule
from mnv4_postmortem.analyzer.engine.expr import RuleEvaluator, compile_expr
from mnv4_postmortem.analyzer.engine.loader import RulePack
from mnv4_postmortem.analyzer.engine.schema import Rule
from mnv4_postmortem.analyzer.findings import Finding

__all__ = ["rule_for", "forced_fix"]


def rule_for(pack: RulePack, name: str) -> Rule | None:
    """The rule that speaks for ``name`` (a rule id or a cause): the first one with a fix, else the first."""
    rules = [r for r in pack.rules if name in (r.id, r.cause) or name in r.aliases]
    return next((r for r in rules if r.fix is not None), rules[0] if rules else None)


def forced_fix(rule: Rule, names: Mapping[str, Any], meta: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``rule``'s fix arguments on ``names`` with ``when``, ``epochs`` and ``for`` forced to hold."""
    if rule.fix is None:
        return None
    forced = replace(rule, when=compile_expr("True"), epochs=None, for_epochs=None)
    warnings: list = []
    result = evaluate_rule(forced, RuleEvaluator(names), dict(names), warnings, meta)
    if isinstance(result, Finding) and result.fix is not None:
        return dict(result.fix.args)
    return None
