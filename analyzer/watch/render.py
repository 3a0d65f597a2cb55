"""``watch``'s text lines: one timestamped head line per change, then the evidence as ``report`` shows it."""

from __future__ import annotations

from typing import Any

from mnv4_postmortem.analyzer.watch.tracker import Change

_VERB = {"started": "FIRES", "confirmed": "CONFIRMED", "escalated": "ESCALATED", "stopped": "STOPPED",
         "top-cause": "TOP CAUSE"}


def _epoch_text(epoch: int | None) -> str:
    return "before epoch 0" if epoch is None else f"epoch {epoch}"


def change_lines(change: Change, when: str) -> list[str]:
    head = f"{when}  [{_epoch_text(change.epoch)}] {_VERB[change.kind]}"
    finding = change.finding
    if change.kind == "top-cause":
        was = f" (was {change.previous})" if change.previous else ""
        return [f"{head} {finding.cause if finding else 'none'}{was}"]
    assert finding is not None
    label = f"{finding.severity.label} {finding.rule_id}"
    if change.kind == "stopped":
        return [f"{head} {label}: no longer fires"]
    tags = []
    if change.predicted:
        symptom = f"; the curves show it from epoch {change.symptom_epoch}" if change.symptom_epoch is not None else ""
        tags.append(f"predicted from the recipe{symptom}")
    elif change.visible_from is not None:
        tags.append(f"visible from epoch {change.visible_from}")
    lines = [f"{head} {label}" + (f" ({'; '.join(tags)})" if tags else "") + f": {finding.title}"]
    lines += [f"    - {evidence.text}" for evidence in finding.evidence]
    if finding.fix is not None and finding.fix.command:
        lines.append(f"    fix: {finding.fix.command}")
    return lines


def note_line(event: dict[str, Any]) -> str:
    return f"{event['time']}  {event['event']}: {event.get('message', '')}"
