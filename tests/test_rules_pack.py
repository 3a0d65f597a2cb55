"""Every shipped rule is valid, documented, and passes its own must-fire / must-not-fire cases.

The cases are collected from the rule pack itself (``rules/**/<id>.test.yaml``), so a new rule is
tested as soon as it is added, like timm's tests walk its model registry.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mnv4_postmortem.analyzer.engine import load_pack
from mnv4_postmortem.analyzer.features.names import is_known_name
from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.ingest.synthetic import synthetic_run
from mnv4_postmortem.analyzer.pipeline import namespace
from mnv4_postmortem.analyzer.engine import CAUSES, builtin_rules_root, find_test_files
from mnv4_postmortem.analyzer.engine.testing import check_coverage, load_test_suite, run_case

PACK = load_pack(known_names=is_known_name)
TEST_FILES = find_test_files([Path(str(builtin_rules_root()))])
SUITES = [load_test_suite(path)[0] for path in TEST_FILES]
CASES = [(suite, case) for suite in SUITES if suite is not None for case in suite.cases]


def test_pack_loads_without_errors():
    assert PACK.errors == ()
    assert len(PACK.rules) >= 12


def test_every_catalog_cause_has_a_rule():
    covered = {rule.cause for rule in PACK.rules}
    assert set(CAUSES) <= covered, sorted(set(CAUSES) - covered)


def test_every_rule_has_firing_and_silent_cases():
    assert all(suite is not None for suite in SUITES)
    assert check_coverage(PACK, [s for s in SUITES if s is not None], require_all_rules=True) == []


def test_every_rule_is_documented():
    for rule in PACK.rules:
        assert rule.explanation.strip(), rule.id
        assert rule.evidence, rule.id


@pytest.mark.parametrize(("suite", "case"), CASES, ids=[f"{s.rule_id}::{c.name}" for s, c in CASES])
def test_rule_case(suite, case):
    result = run_case(PACK, suite, case, diagnose=namespace, load_run=load_run, make_run=synthetic_run)
    assert result.ok, f"{result.outcome}: {result.message}"
