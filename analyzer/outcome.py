"""The report's outcome, decided in one place from the findings and the coverage.

Three outcomes (README, "Outcomes and exit codes"):

- ``findings``: a finding at warning or above;
- ``no-problem-found``: none, and the run had the data the main symptom checks need
  (``Coverage.judgeable``: a train or eval curve over a few epochs; ``coverage.py`` states the principle);
- ``nothing-to-judge``: none, and that data was missing, so silence means nothing. The report says what
  would be needed; ``report`` exits with its own code (``cli/exit_codes.NOTHING_TO_JUDGE``).

Renderers and the CLI read the decision; none of them re-derives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from mnv4_postmortem.analyzer.coverage import Coverage
from mnv4_postmortem.analyzer.findings import Finding, Severity

FINDINGS = "findings"
NO_PROBLEM_FOUND = "no-problem-found"
NOTHING_TO_JUDGE = "nothing-to-judge"
OUTCOMES = (FINDINGS, NO_PROBLEM_FOUND, NOTHING_TO_JUDGE)


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str                 # one of OUTCOMES
    headline: str             # the sentence a report leads with ("" for findings on judged curves)
    needed: str | None = None # what would let the curves be judged (None when they were)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "headline": self.headline, "needed": self.needed}


def decide_outcome(findings: Sequence[Finding], coverage: Coverage, unexplained: Sequence[Any] = ()) -> Outcome:
    """Findings when any is at warning or above (what "healthy" means everywhere: labels, batch), or when a
    symptom at warning or above goes unexplained (issue 13: no strong symptom goes unreported); else
    "no problem found" only when the run could have shown one; else "nothing to judge"."""
    serious = [f for f in findings if f.severity >= Severity.WARNING] or list(unexplained)
    if serious:
        # Findings from the settings alone (input size, EMA arithmetic) stand; the reader is told that the
        # curves, which most checks need, were not there to be judged.
        return Outcome(FINDINGS, "" if coverage.judgeable else "Curves not judged: " + (coverage.needed or ""),
                       None if coverage.judgeable else coverage.needed)
    if coverage.judgeable:
        extra = f" ({len(findings)} informational finding(s) below)" if findings else ""
        return Outcome(NO_PROBLEM_FOUND, "No problem found: no rule fired at warning or above" + extra + "."
                       if findings else "No problem found: no rule fired.")
    return Outcome(NOTHING_TO_JUDGE, "Nothing to judge: " + (coverage.needed or "no training curve was found."),
                   coverage.needed)


__all__ = ["FINDINGS", "NOTHING_TO_JUDGE", "NO_PROBLEM_FOUND", "OUTCOMES", "Outcome", "decide_outcome"]
