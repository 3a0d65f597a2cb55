"""``rules show ID``: a rule's documentation page (what it detects, why, the evidence, the fix)."""

from __future__ import annotations

from mnv4_postmortem.analyzer.render import RulePage


def render(page: RulePage, *, verbose: bool = False) -> str:
    rule = page.rule
    lines = [
        f"{rule.id}: {rule.title}",
        f"cause: {rule.cause} ({page.cause_description})",
        f"severity: {rule.severity.name.lower()}",
        "",
        "when:",
        f"  {rule.when.text.strip()}",
    ]
    if rule.epochs is not None:
        lines.append(f"epochs: {rule.epochs.text.strip()}" + (f"  (for: {rule.for_epochs})" if rule.for_epochs else ""))
    lines += ["", "evidence:"] + [f"  - {template.source.strip()}" for template in rule.evidence]
    if rule.explanation:
        lines += ["", rule.explanation.strip()]
    if rule.fix is not None:
        args = {k: (f"={v.text}" if hasattr(v, "text") else v) for k, v in rule.fix.args.items()}
        lines += ["", f"fix: {args}" + (f"\n  {rule.fix.note}" if rule.fix.note else "")]
        if rule.fix.safety != "safe":
            lines.append(f"  safety: {rule.fix.safety}")
    if rule.references:
        lines += ["", "references:"] + [f"  {ref}" for ref in rule.references]
    return "\n".join(lines)
