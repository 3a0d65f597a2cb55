"""``batch --out``'s index.html: one self-contained page (sortable, filterable table, eval top-1 overlays per
top cause, the "what differs" table). Data comes from the BatchSummary; nothing is diagnosed here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # renderers never import batch at run time: a row is only read here
    from mnv4_postmortem.analyzer.batch.rows import RunRow
from mnv4_postmortem.analyzer.render.environment import template_environment
from mnv4_postmortem.analyzer.render.plots import overlays_svg
from mnv4_postmortem.analyzer.render.versions import footer_versions

SEVERITY_ORDER = {"critical": 4, "error": 3, "warning": 2, "info": 1, None: 0}


def render(summary, *, verbose: bool = False) -> str:
    """The index page of a :class:`~mnv4_postmortem.analyzer.batch.outputs.BatchSummary`."""
    rows, differences, reports_folder = summary.rows, summary.differences, summary.reports_folder
    ordered = sorted(rows, key=lambda r: (-SEVERITY_ORDER.get(r.severity, 0), r.name))
    template = template_environment().get_template("index.html.j2")
    return template.render(
        rows=ordered,
        reports_folder=reports_folder,
        severity_order=SEVERITY_ORDER,
        differences=differences,
        overlays=overlays_svg(rows),
        causes=sorted({r.top_cause for r in rows if r.top_cause}),
        counts=counts(rows),
        versions=footer_versions(),
    )


def counts(rows: Sequence[RunRow]) -> dict[str, int]:
    return {
        "runs": len(rows),
        "unreadable": sum(1 for r in rows if r.error),
        "healthy": sum(1 for r in rows if r.healthy),
        "flagged": sum(1 for r in rows if r.error is None and not r.healthy and not r.nothing_to_judge),
        "nothing_to_judge": sum(1 for r in rows if r.nothing_to_judge),  # neither healthy nor flagged
    }


def number_text(value) -> str:
    return "" if value is None else f"{value:g}"
