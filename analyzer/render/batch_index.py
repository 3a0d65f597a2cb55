"""The batch index: one self-contained HTML page (sortable, filterable table, eval top-1 overlays per top
cause, the "what differs" table) and a Markdown summary. Data comes from the rows; nothing is diagnosed here."""

from __future__ import annotations

from typing import Sequence

from mnv4_postmortem.analyzer.batch.differs import Difference
from mnv4_postmortem.analyzer.batch.rows import RunRow
from mnv4_postmortem.analyzer.render.environment import template_environment
from mnv4_postmortem.analyzer.render.markdown import md_cell, md_text
from mnv4_postmortem.analyzer.render.plots import overlays_svg
from mnv4_postmortem.analyzer.render.versions import footer_versions

SEVERITY_ORDER = {"critical": 4, "error": 3, "warning": 2, "info": 1, None: 0}


def render_index(rows: Sequence[RunRow], differences: Sequence[Difference], reports_folder: str) -> str:
    ordered = sorted(rows, key=lambda r: (-SEVERITY_ORDER.get(r.severity, 0), r.name))
    template = template_environment().get_template("index.html.j2")
    return template.render(
        rows=ordered,
        reports_folder=reports_folder,
        severity_order=SEVERITY_ORDER,
        differences=differences,
        overlays=overlays_svg(rows),
        causes=sorted({r.top_cause for r in rows if r.top_cause}),
        counts=_counts(rows),
        versions=footer_versions(),
    )


def _counts(rows: Sequence[RunRow]) -> dict[str, int]:
    return {
        "runs": len(rows),
        "unreadable": sum(1 for r in rows if r.error),
        "healthy": sum(1 for r in rows if r.healthy),
        "flagged": sum(1 for r in rows if r.error is None and not r.healthy),
    }


def render_summary_md(rows: Sequence[RunRow], differences: Sequence[Difference]) -> str:
    counts = _counts(rows)
    lines = [
        "## mnv4-postmortem batch",
        "",
        f"{counts['runs']} runs: {counts['flagged']} flagged, {counts['healthy']} healthy, {counts['unreadable']} unreadable.",
        "",
        "| run | model | epochs | best top-1 | final top-1 | top cause | severity | confidence |",
        "|---|---|---:|---:|---:|---|---|---:|",
    ]
    for r in sorted(rows, key=lambda r: (-SEVERITY_ORDER.get(r.severity, 0), r.name)):
        cause = r.top_cause or ("unreadable: " + r.error if r.error else "-")
        lines.append("| " + " | ".join(md_cell(v) for v in (
            r.name, r.model or "", r.epochs, _num(r.best_top1), _num(r.final_top1), cause, r.severity or "",
            _num(r.confidence))) + " |")
    if differences:
        lines += ["", "### What differs (flagged runs vs the others)", ""]
        lines += [f"- {md_text(d.sentence())}" for d in differences]
    return "\n".join(lines) + "\n"


def _num(value) -> str:
    return "" if value is None else f"{value:g}"
