"""Calibration data of the scored causes: how often a scored cause is right at each evidence total.

Reads the labelled runs (fixtures/labels.yaml) and the public DEV cases only (fixtures/public/LABELS.yaml
without the holdout: issue 13 keeps the holdout out of every weight and mapping). For every scored cause that
fires (before findings are merged per cause) it records the two parts of its evidence total: the strength of
the symptoms it explains and the net weight of its signals, and whether its cause is one the label accepts.
It prints right/total per band of the evidence past the bar and per band of the signals, and the stated
confidence against the observed rate, so that the mapping in analyzer/engine/evaluate.py
(``_confidence_of``) can be checked against data it was not fitted to one run of.

Usage: python bench/bench_calibration.py   (MNV4_SHARED=/path/to/shared when ../shared is elsewhere)
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from _labelled import finding_is_right, load_labels  # noqa: E402
from _public_cases import load_public_cases  # noqa: E402

from mnv4_postmortem.analyzer.engine import evaluate, load_pack  # noqa: E402
from mnv4_postmortem.analyzer.ingest import load_run  # noqa: E402
from mnv4_postmortem.analyzer.model import IngestError  # noqa: E402
from mnv4_postmortem.analyzer.pipeline import namespace  # noqa: E402

BANDS = ((-99, 0), (0, 1), (1, 2), (2, 3), (3, 99))
CONFIDENCE_BINS = ((0.0, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.01))


def rows(pack):
    labels = [(label, "labelled") for label in load_labels()]
    labels += [(case.label, "public-dev") for case in load_public_cases() if not case.holdout]
    for label, origin in labels:
        if not label.path.is_dir():
            continue
        try:
            names, _ = namespace(load_run(label.path))  # the report's stages, stopped before the rules
        except IngestError:
            continue
        evaluation = evaluate(pack, names)
        for finding in evaluation.findings:
            if finding.score is None:
                continue
            bar = float(pack.get(finding.rule_id).bar or 1.0)
            yield {"run": label.run, "origin": origin, "rule": finding.rule_id, "strength": finding.strength,
                   "signals": finding.score - finding.strength, "past_bar": finding.score - bar,
                   "confidence": finding.confidence, "right": finding_is_right(label, finding)}


def table(title: str, data: list[dict], key: str, bands) -> None:
    print(f"\n{title}")
    for low, high in bands:
        inside = [d for d in data if low <= d[key] < high]
        if inside:
            right = sum(d["right"] for d in inside)
            print(f"  [{low:>5g}, {high:<5g})  {right:3d}/{len(inside):<3d} right = {right / len(inside):.0%}")


def main() -> int:
    data = list(rows(load_pack()))
    print(f"scored causes fired: {len(data)} (labelled runs and public dev cases; the holdout is not read)")
    table("by evidence past the bar (score - bar)", data, "past_bar", BANDS)
    table("by net signal weight (score - explained symptom strength)", data, "signals", BANDS)
    table("stated confidence against observed", data, "confidence", CONFIDENCE_BINS)
    wrong = [d for d in data if not d["right"]]
    for d in wrong:
        print(f"  wrong: {d['rule']:22s} strength {d['strength']:.2f} signals {d['signals']:+.2f} "
              f"confidence {d['confidence']:.2f}  {d['run']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
