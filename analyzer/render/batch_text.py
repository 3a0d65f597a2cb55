"""``batch`` as a table: one line per run, its top finding (or ``ok``)."""

from __future__ import annotations

from mnv4_postmortem.analyzer.diagnosis import Diagnosis
from mnv4_postmortem.analyzer.render.terminal import one_line

PATH_WIDTH = 60


def render(diagnosis: Diagnosis, *, verbose: bool = False) -> str:
    top = diagnosis.findings[0] if diagnosis.findings else None
    summary = f"{top.severity.label:<8} {top.cause:<20} {one_line(top.title)}" if top else "ok       -"
    # one line per run: a newline in a folder name must not start a second one
    return f"{one_line(diagnosis.summary.path):<{PATH_WIDTH}} {summary}"


def render_error(path: str, message: str) -> str:
    return f"{one_line(path):<{PATH_WIDTH}} unusable: {one_line(message)}"
