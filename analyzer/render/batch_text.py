"""``batch`` as a table: one line per run, its top finding (or ``ok``)."""

from __future__ import annotations

from mnv4_postmortem.analyzer.diagnosis import Diagnosis

PATH_WIDTH = 60


def render(diagnosis: Diagnosis, *, verbose: bool = False) -> str:
    top = diagnosis.findings[0] if diagnosis.findings else None
    summary = f"{top.severity.label:<8} {top.cause:<20} {top.title}" if top else "ok       -"
    return f"{diagnosis.summary.path:<{PATH_WIDTH}} {summary}"


def render_error(path: str, message: str) -> str:
    return f"{path:<{PATH_WIDTH}} unusable: {message}"
