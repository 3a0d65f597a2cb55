"""Acceptance: every labelled run gets its labelled cause as the top finding at warning or above,
and a healthy run gets nothing at warning or above.

Labels come from the LABELS.md next to the runs (bundled fixtures, and ../shared in place).
"""

from __future__ import annotations

import pytest

from conftest import FIXTURE_RUNS, REAL_RUNS, labelled_runs
from mnv4_postmortem.analyzer.engine import load_pack
from mnv4_postmortem.analyzer.features.names import is_known_name
from mnv4_postmortem.analyzer.engine import CAUSES
from mnv4_postmortem.analyzer.findings import Severity
from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.pipeline import diagnose

PACK = load_pack(known_names=is_known_name)
CASES = [(FIXTURE_RUNS / name, label) for name, label in labelled_runs(FIXTURE_RUNS).items()]
CASES += [(REAL_RUNS / name, label) for name, label in labelled_runs(REAL_RUNS).items()]


def expected_causes(label: str) -> set[str] | None:
    """The causes a label accepts; None for 'healthy'. 'healthy or X' accepts both."""
    words = label.lower().replace("(", " ").replace(")", " ").replace(",", " ").replace(":", " ").split()
    causes = {w for w in words if w in CAUSES}
    if "healthy" in words and not causes:
        return None
    if "healthy" in words:
        causes.add("healthy")
    return causes


@pytest.mark.parametrize(("run_dir", "label"), CASES, ids=[p.name for p, _ in CASES])
def test_labelled_run(run_dir, label):
    if not run_dir.exists():
        pytest.skip(f"{run_dir} is not available")
    report = diagnose(load_run(run_dir), PACK)
    serious = [f for f in report.findings if f.severity >= Severity.WARNING]
    expected = expected_causes(label)
    if expected is None:
        assert serious == [], [f"{f.cause}/{f.rule_id}" for f in serious]
        return
    if "healthy" in expected and not serious:
        return
    assert serious, f"expected {sorted(expected)}, got nothing at warning or above"
    assert serious[0].cause in expected, f"top finding {serious[0].cause} ({serious[0].rule_id}); expected {sorted(expected)}"


def test_label_parser_reads_both_tables():
    assert len(labelled_runs(FIXTURE_RUNS)) >= 9
    if REAL_RUNS.is_dir():
        assert len(labelled_runs(REAL_RUNS)) >= 15
    assert expected_causes("divergence (lr-too-high also acceptable)") == {"divergence", "lr-too-high"}
    assert expected_causes("healthy") is None
