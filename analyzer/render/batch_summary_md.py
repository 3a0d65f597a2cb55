"""``batch --format md`` and ``summary.md``: the batch as a GitHub-flavoured Markdown table."""

from __future__ import annotations

from mnv4_postmortem.analyzer.render.batch_index import SEVERITY_ORDER, number_text
from mnv4_postmortem.analyzer.render.batch_index import counts as run_counts
from mnv4_postmortem.analyzer.render.markdown import md_cell, md_text


def render(summary, *, verbose: bool = False) -> str:
    """The Markdown summary of a BatchSummary: one table row per run, then "what differs"."""
    rows, differences = summary.rows, summary.differences
    counts = run_counts(rows)
    lines = [
        "## mnv4-postmortem batch",
        "",
        f"{counts['runs']} runs: {counts['flagged']} flagged, {counts['healthy']} healthy, "
        f"{counts['nothing_to_judge']} nothing to judge, {counts['unreadable']} unreadable."
        + (" Interrupted (Ctrl-C): these are the runs that finished." if getattr(summary, "interrupted", False) else ""),
        "",
        "| run | model | epochs | best top-1 | final top-1 | top cause | severity | confidence | coverage |",
        "|---|---|---:|---:|---:|---|---|---:|---|",
    ]
    for r in sorted(rows, key=lambda r: (-SEVERITY_ORDER.get(r.severity, 0), r.name)):
        cause = r.top_cause or ("unreadable: " + r.error if r.error else
                                "nothing to judge: " + (r.needed or "") if r.nothing_to_judge else "-")
        lines.append("| " + " | ".join(md_cell(v) for v in (
            r.name, r.model or "", r.epochs, number_text(r.best_top1), number_text(r.final_top1), cause, r.severity or "",
            number_text(r.confidence), r.coverage or "")) + " |")
    if differences:
        lines += ["", "### What differs (flagged runs vs the others)", ""]
        lines += [f"- {md_text(d.sentence())}" for d in differences]
    return "\n".join(lines) + "\n"


