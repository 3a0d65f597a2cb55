"""``rules list``: one line per rule (id, severity, cause, title), sorted by id.

The subject is a rule pack, read by attribute only (``pack.rules``; each rule's ``id``,
``severity``, ``cause``, ``title``).
"""

from __future__ import annotations

from typing import Any


def rows(pack: Any) -> list[dict[str, str]]:
    return [{"id": r.id, "severity": r.severity.name.lower(), "cause": r.cause, "title": r.title} for r in pack.rules]


def render(pack: Any, *, verbose: bool = False) -> str:
    return "\n".join(
        f"{row['id']:<32} {row['severity']:<8} {row['cause']:<20} {row['title']}"
        for row in sorted(rows(pack), key=lambda r: r["id"])
    )
