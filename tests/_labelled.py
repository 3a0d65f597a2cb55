"""The labelled runs (fixtures/labels.yaml) and how a diagnosis is judged against them.

Shared by tests/test_labeled_runs.py (every run must pass) and bench/bench_labels.py (confusion matrix and
reliability table), so that both judge the same way.

A label names the acceptable top causes (``healthy``: no finding at warning or above), the causes that must
also appear (``also``), and causes that may appear without being wrong (``may``). A finding is *right* when
its cause is in ``top``, ``also`` or ``may``; on a healthy run an info finding is right only when listed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from mnv4_postmortem.analyzer.findings import Finding, Severity

REPO = Path(__file__).resolve().parents[1]
LABELS_FILE = REPO / "fixtures" / "labels.yaml"
# CI keeps the shared runs at ../shared beside the clone; MNV4_SHARED points elsewhere (a worktree).
SHARED = Path(os.environ.get("MNV4_SHARED", REPO.parent / "shared"))
HEALTHY = "healthy"


@dataclass(frozen=True)
class Label:
    run: str                   # as written in labels.yaml: fixtures/runs/x or shared/real-runs/x
    top: tuple[str, ...]       # acceptable top causes ("healthy" allowed)
    also: tuple[str, ...] = ()
    may: tuple[str, ...] = ()
    origin: str = ""           # made-here | shared-timm | shared-public | public

    @property
    def path(self) -> Path:
        if self.run.startswith("shared/"):
            return SHARED / self.run.removeprefix("shared/")
        return REPO / self.run

    @property
    def expected(self) -> str:
        return self.top[0]


def load_labels(path: Path = LABELS_FILE) -> list[Label]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    labels = []
    for run, entry in data["runs"].items():
        labels.append(Label(
            run=run, top=tuple(entry["top"]), also=tuple(entry.get("also", ())),
            may=tuple(entry.get("may", ())), origin=entry.get("origin", ""),
        ))
    return labels


UNEXPLAINED = "unexplained"


def top_cause(findings: tuple[Finding, ...], unexplained: tuple = ()) -> str:
    """The diagnosis in one word: the first finding's cause; else ``unexplained`` when a symptom at warning or
    above is reported without a cause; else healthy (nothing at warning or above)."""
    serious = [f for f in findings if f.severity >= Severity.WARNING]
    if serious:
        return findings[0].cause
    return UNEXPLAINED if unexplained else HEALTHY


def problems(label: Label, findings: tuple[Finding, ...], unexplained: tuple = ()) -> list[str]:
    """Why this diagnosis does not meet its label (empty when it does). A healthy label is met only when
    nothing is at warning or above (``top_cause`` is then ``healthy``)."""
    found = []
    top = top_cause(findings, unexplained)
    if top not in label.top:
        found.append(f"top cause {top}, expected one of {list(label.top)}")
    causes = {f.cause for f in findings}
    for cause in label.also:
        if cause not in causes:
            found.append(f"{cause} must also appear")
    return found


def finding_is_right(label: Label, finding: Finding) -> bool:
    ok = set(label.top) | set(label.also) | set(label.may)
    return finding.cause in ok
