"""``batch`` as a table: one line per run, its top finding (or ``ok``)."""

from __future__ import annotations

from mnv4_postmortem.analyzer.diagnosis import Diagnosis
from mnv4_postmortem.analyzer.render.terminal import one_line
from mnv4_postmortem.analyzer.outcome import NOTHING_TO_JUDGE

PATH_WIDTH = 60


def render(diagnosis: Diagnosis, *, verbose: bool = False) -> str:
    top = diagnosis.findings[0] if diagnosis.findings else None
    outcome = diagnosis.outcome
    path = one_line(diagnosis.summary.path)  # one line per run: a newline in a folder name must not start a second one
    if top is None and outcome is not None and outcome.kind == NOTHING_TO_JUDGE:
        # neither healthy nor failed: the run lacked the curves the checks need (analyzer/outcome.py)
        return f"{path:<{PATH_WIDTH}} nothing to judge: {one_line(outcome.needed or '')}"
    summary = f"{top.severity.label:<8} {top.cause:<20} {one_line(top.title)}" if top else "ok       -"
    return f"{path:<{PATH_WIDTH}} {summary}"


def render_error(path: str, message: str) -> str:
    return f"{one_line(path):<{PATH_WIDTH}} unusable: {one_line(message)}"
