"""Benchmark of diagnosis quality on the public cases (fixtures/public/LABELS.yaml): no timing, only right/wrong.

The cases are other people's timm-format outputs and pasted excerpts, labelled before the tool ran on them
(LABELS.yaml's git history). A third is held out by a hash rule; the holdout is reported on its own and must not
be looked at while writing rules and weights (issue 13, section 6).

For each split (dev, holdout) it prints the top-cause accuracy (a label is met as tests/_labelled.problems judges
it: the top cause is acceptable, causes that must also appear do, and a healthy label means nothing at warning or
above) and the calibration target of issue 13: findings stated at confidence >= 0.8 are right (their cause is one
the label accepts) at least 90 % of the time. A case whose ingest fails counts as a miss.

The holdout's per-case results (which case, which finding) are printed only with --show-holdout, so that a person
tuning rules sees the holdout's figures and nothing to tune against; dev misses are always named.

Usage: python bench/bench_public_cases.py [--table] [--show-holdout]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from _labelled import finding_is_right, problems, top_cause  # noqa: E402
from _public_cases import PublicCase, load_public_cases  # noqa: E402

from mnv4_postmortem.analyzer.engine import load_pack  # noqa: E402
from mnv4_postmortem.analyzer.ingest import load_run  # noqa: E402
from mnv4_postmortem.analyzer.model import IngestError  # noqa: E402
from mnv4_postmortem.analyzer.pipeline import diagnose  # noqa: E402

CONFIDENT = 0.8          # issue 13's calibration threshold
CALIBRATION_TARGET = 0.9


@dataclass(frozen=True)
class Outcome:
    case: PublicCase
    diagnosed: str
    wrong: tuple[str, ...]
    confident_right: tuple[bool, ...]   # one entry per finding stated at confidence >= CONFIDENT
    findings: str


def judge(case: PublicCase, pack) -> Outcome:
    try:
        report = diagnose(load_run(case.label.path), pack)
    except IngestError as error:
        return Outcome(case, "ingest-error", (f"ingest failed: {error}",), (), "-")
    findings = report.findings
    confident = tuple(finding_is_right(case.label, f) for f in findings if f.confidence >= CONFIDENT)
    shown = ", ".join(f"{f.cause} {f.severity.label[0]}{f.confidence:.2f}" for f in findings) or "-"
    return Outcome(case, top_cause(findings), tuple(problems(case.label, findings)), confident, shown)


def summarize(name: str, outcomes: list[Outcome], *, name_misses: bool) -> None:
    right = sum(not o.wrong for o in outcomes)
    confident = [ok for o in outcomes for ok in o.confident_right]
    share = right / len(outcomes) if outcomes else float("nan")
    print(f"{name:8s} top cause acceptable: {right}/{len(outcomes)} ({share:.0%})", end="")
    if confident:
        rate = sum(confident) / len(confident)
        verdict = "meets" if rate >= CALIBRATION_TARGET else "misses"
        print(f"; findings at confidence >= {CONFIDENT}: {sum(confident)}/{len(confident)} right ({rate:.0%}, "
              f"{verdict} the {CALIBRATION_TARGET:.0%} target)")
    else:
        print(f"; no finding stated at confidence >= {CONFIDENT}")
    for outcome in outcomes if name_misses else ():
        if outcome.wrong:
            print(f"    miss {outcome.case.name}: {'; '.join(outcome.wrong)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="store_true", help="print the per-case table (markdown)")
    parser.add_argument("--show-holdout", action="store_true",
                        help="also show the holdout's per-case results (not while writing rules or weights)")
    options = parser.parse_args()
    pack = load_pack()
    outcomes = [judge(case, pack) for case in load_public_cases()]
    if options.table:
        print("| case | split | acceptable top | diagnosed top | result | all findings |")
        print("|---|---|---|---|---|---|")
        for o in outcomes:
            if o.case.holdout and not options.show_holdout:
                continue
            result = "ok" if not o.wrong else "MISS: " + "; ".join(o.wrong)
            split = "holdout" if o.case.holdout else "dev"
            print(f"| {o.case.name} | {split} | {'/'.join(o.case.label.top)} | {o.diagnosed} | {result} | {o.findings} |")
        print()
    summarize("dev", [o for o in outcomes if not o.case.holdout], name_misses=True)
    summarize("holdout", [o for o in outcomes if o.case.holdout], name_misses=options.show_holdout)
    summarize("all", outcomes, name_misses=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
