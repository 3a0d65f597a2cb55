"""Benchmark of diagnosis quality on the labelled runs (fixtures/labels.yaml): no timing, only right/wrong.

Prints, for every labelled run, the expected and the diagnosed top cause; then the confusion matrix
(expected = the label's first acceptable top cause, rows; diagnosed top cause, columns; a diagnosis that
is acceptable but not the first choice counts on the diagonal); then the reliability table: every finding
binned by its stated confidence against the share of those findings that are right (its cause is one the
label accepts: a top cause, an ``also`` or a ``may``). The calibration target of issue 10: findings stated
at confidence >= 0.8 are right at least 90 % of the time.

Usage: python bench/bench_labels.py [--table]   (MNV4_SHARED=/path/to/shared when ../shared is elsewhere)
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from _labelled import HEALTHY, finding_is_right, load_labels, problems, top_cause  # noqa: E402

from mnv4_postmortem.analyzer.engine import load_pack  # noqa: E402
from mnv4_postmortem.analyzer.ingest import load_run  # noqa: E402
from mnv4_postmortem.analyzer.pipeline import diagnose as analyze  # noqa: E402

BINS = ((0.0, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.01))
TARGET_CONFIDENCE, TARGET_ACCURACY = 0.8, 0.9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="store_true", help="print the per-run table (markdown)")
    options = parser.parse_args()
    pack = load_pack()
    confusion: Counter[tuple[str, str]] = Counter()
    reliability: dict[tuple[float, float], list[bool]] = defaultdict(list)
    rows, failures, skipped = [], 0, 0
    for label in load_labels():
        if not label.path.is_dir():
            skipped += 1
            continue
        report = analyze(load_run(label.path), pack)
        findings = report.findings
        diagnosed = top_cause(findings, report.unexplained)
        wrong = problems(label, findings, report.unexplained)
        failures += bool(wrong)
        confusion[(label.expected, label.expected if diagnosed in label.top else diagnosed)] += 1
        for finding in findings:
            for low, high in BINS:
                if low <= finding.confidence < high:
                    reliability[(low, high)].append(finding_is_right(label, finding))
        shown = ", ".join(f"{f.cause}{' (latent)' if f.latent else ''} {f.severity.label[0]}{f.confidence:.2f}" for f in findings)
        rows.append((label.run, label.origin, "/".join(label.top), "+".join(label.also) or "-", diagnosed,
                     "ok" if not wrong else "FAIL: " + "; ".join(wrong), shown or "-"))
    if options.table:
        print("| run | origin | acceptable top | must also appear | diagnosed top | result | all findings |")
        print("|---|---|---|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print()
    print(f"labelled runs: {len(rows)} judged, {skipped} skipped (not available), {failures} not acceptable")
    _print_confusion(confusion)
    return _print_reliability(reliability)


def _print_confusion(confusion: Counter[tuple[str, str]]) -> None:
    expected = sorted({e for e, _ in confusion}, key=lambda c: (c != HEALTHY, c))
    diagnosed = sorted({d for _, d in confusion} | set(expected), key=lambda c: (c != HEALTHY, c))
    short = {c: c[:10] for c in diagnosed}
    width = max(len(c) for c in expected) + 2
    print("\nconfusion matrix (rows: expected top cause, columns: diagnosed; acceptable alternatives count as expected)")
    print(" " * width + " ".join(f"{short[c]:>10}" for c in diagnosed))
    for e in expected:
        print(f"{e:<{width}}" + " ".join(f"{confusion[(e, d)] or '.':>10}" for d in diagnosed))
    right = sum(n for (e, d), n in confusion.items() if e == d)
    print(f"top cause acceptable: {right}/{sum(confusion.values())}")


def _print_reliability(reliability: dict[tuple[float, float], list[bool]]) -> int:
    print("\nreliability (every finding, by stated confidence)")
    print(f"{'confidence':<12}{'findings':>9}{'right':>7}{'observed':>10}")
    for low, high in BINS:
        outcomes = reliability.get((low, high), [])
        share = f"{sum(outcomes) / len(outcomes):.0%}" if outcomes else "-"
        print(f"{low:.1f}-{min(high, 1.0):.1f}{'':<5}{len(outcomes):>9}{sum(outcomes):>7}{share:>10}")
    high = [ok for (low, _), outcomes in reliability.items() if low >= TARGET_CONFIDENCE for ok in outcomes]
    share = sum(high) / len(high) if high else float("nan")
    verdict = "met" if high and share >= TARGET_ACCURACY else "MISSED"
    print(f"findings at confidence >= {TARGET_CONFIDENCE}: {sum(high)}/{len(high)} right = {share:.1%} "
          f"(target >= {TARGET_ACCURACY:.0%}: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
