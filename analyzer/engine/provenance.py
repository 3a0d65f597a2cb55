"""What a rule pack is and what a rule reads: the rule-pack version for report footers, and the config
settings each rule's evidence and fix use (a report highlights those values in its config table)."""

from __future__ import annotations

import hashlib
from typing import Iterable

from mnv4_postmortem.analyzer.engine.loader import RulePack
from mnv4_postmortem.analyzer.engine.schema import Rule

CONFIG_ROOT = "config."


def pack_version(pack: RulePack) -> str:
    """``<n> rules @ <digest>``: a digest of every rule's id and source text, so two reports made with the
    same rules say the same version and any edit to any rule changes it."""
    digest = hashlib.sha256()
    for rule in sorted(pack.rules, key=lambda r: r.id):
        digest.update(rule.id.encode())
        digest.update(_rule_text(rule).encode("utf-8", "replace"))
    return f"{len(pack.rules)} rules @ {digest.hexdigest()[:12]}"


def _rule_text(rule: Rule) -> str:
    confidence = getattr(rule.confidence, "text", rule.confidence)  # an Expr or a number
    parts = [rule.title, rule.cause, rule.severity.name, rule.when.text, str(confidence), str(rule.specificity)]
    parts += [t.source for t in rule.evidence]
    if rule.fix is not None:
        parts += [f"{k}={getattr(v, 'text', v)!r}" for k, v in rule.fix.args.items()] + [rule.fix.note, rule.fix.safety]
    return "\x1f".join(parts)


def config_keys_cited(rule: Rule | None, fix_keys: Iterable[str] = ()) -> tuple[str, ...]:
    """The train.py settings a finding's evidence quotes (``config.model_ema_decay``) and its fix changes."""
    keys: list[str] = []
    if rule is not None:
        for template in rule.evidence:
            for use in template.names:
                if use.path.startswith(CONFIG_ROOT):
                    keys.append(use.path[len(CONFIG_ROOT):].split(".")[0])
    keys.extend(fix_keys)
    return tuple(dict.fromkeys(k for k in keys if k and k != "source_of" and k != "source"))
