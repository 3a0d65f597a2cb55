"""Issue 13's metamorphic suite (bounded for CI) and the coverage invariant.

CI runs a deterministic, stratified subset: for every expected top cause of fixtures/labels.yaml, its first
labelled run that is available (labels.yaml order), under every variant of tests/_metamorphic.py, analysed
in-process with one loaded rule pack. The full set (every labelled run) is bench/bench_metamorphic.py.

- retention: the label survives at least RETENTION_FLOOR of the applicable variants of the subset. The floor is
  the issue's per-variant target (90 %) applied to the subset as a whole; the bench prints the full figures.
- coverage: no report says "No problem found" while a symptom at warning or above fires, and every such
  symptom is explained by a finding or listed as unexplained (with candidate causes).
"""

from __future__ import annotations

import pytest

from mnv4_postmortem.analyzer.engine import load_pack
from mnv4_postmortem.analyzer.findings import Severity
from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.pipeline import diagnose

from _labelled import load_labels
from _metamorphic import VARIANTS, carries, make_variant

RETENTION_FLOOR = 0.9


def _subset():
    chosen, seen = [], set()
    for label in load_labels():
        if label.expected not in seen and label.path.is_dir():
            seen.add(label.expected)
            chosen.append(label)
    return chosen


SUBSET = _subset()


@pytest.fixture(scope="module")
def pack():
    return load_pack()


@pytest.fixture(scope="module")
def outcomes(pack, tmp_path_factory):
    """(label, variant, diagnosis) for every applicable variant of the subset, computed once."""
    results = []
    for label in SUBSET:
        run = load_run(label.path)
        full = diagnose(run, pack)
        workdir = tmp_path_factory.mktemp(label.path.name)
        results.append((label, "full", full))
        for variant in VARIANTS:
            if carries(label, variant) is not None:
                continue
            made = make_variant(run, label, variant, workdir, full)
            if made is not None:
                results.append((label, variant, diagnose(made, pack)))
    return results


def test_subset_covers_every_expected_cause():
    assert len({label.expected for label in SUBSET}) == len(SUBSET) >= 10


def test_labels_survive_the_variants_a_user_has(outcomes):
    from _labelled import top_cause
    from _metamorphic import acceptable

    judged = [(label, variant, top_cause(d.findings, d.unexplained) in acceptable(label, variant))
              for label, variant, d in outcomes if variant != "full"]
    lost = [f"{label.run} [{variant}]" for label, variant, kept in judged if not kept]
    share = 1 - len(lost) / len(judged)
    assert share >= RETENTION_FLOOR, f"retention {share:.0%} over {len(judged)} variants; lost: {lost}"


def test_no_problem_found_never_while_a_symptom_fires(outcomes):
    for label, variant, diagnosis in outcomes:
        strong = [s for s in diagnosis.symptoms if s.severity >= Severity.WARNING]
        where = f"{label.run} [{variant}]"
        if strong:
            assert diagnosis.problem_found, where
        explained = {s for f in diagnosis.findings for s in f.symptoms}
        listed = {u.symptom.id for u in diagnosis.unexplained}
        for symptom in strong:
            assert symptom.id in explained or symptom.id in listed, f"{where}: {symptom.id} neither explained nor listed"
        for item in diagnosis.unexplained:
            assert item.candidates, f"{where}: unexplained {item.symptom.id} without candidate causes"
