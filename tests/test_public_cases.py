"""Public cases (fixtures/public): other people's timm-format outputs, labelled before the tool saw them.

These tests check the collection, not the diagnosis: bench/bench_public_cases.py scores the diagnosis, dev and
holdout apart (the holdout must not steer rules, so no test asserts on its results). Every case folder has a
PROVENANCE.md that names its source and exactly one label; labels name catalog causes; the holdout flag follows
the hash rule stated in LABELS.yaml; every case ingests into at least one usable epoch series.
"""

from __future__ import annotations

import math

import pytest

from mnv4_postmortem.analyzer.engine.schema import CAUSES
from mnv4_postmortem.analyzer.ingest import load_run

from _labelled import HEALTHY
from _public_cases import PUBLIC_DIR, holdout_by_rule, load_public_cases

CASES = load_public_cases()
CASE_DIRS = sorted(p for p in PUBLIC_DIR.iterdir() if p.is_dir())
# The target (issue 13, section 6): at least 30 public cases beyond ../shared, a third held out.
MIN_CASES = 30
HOLDOUT_SHARE = (0.25, 0.45)  # a third in expectation; the bounds allow the hash's sampling spread at n ~ 30


def test_the_collection_is_big_enough_and_a_third_is_held_out():
    assert len(CASES) >= MIN_CASES
    share = sum(case.holdout for case in CASES) / len(CASES)
    assert HOLDOUT_SHARE[0] <= share <= HOLDOUT_SHARE[1], f"holdout share {share:.2f}"


def test_every_case_folder_has_exactly_one_label_and_every_label_a_folder():
    labelled = [case.name for case in CASES]
    assert len(labelled) == len(set(labelled))
    assert sorted(labelled) == [p.name for p in CASE_DIRS]
    for case in CASES:
        assert case.label.run == f"fixtures/public/{case.name}"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_label_names_catalog_causes_and_its_basis(case):
    known = set(CAUSES) | {HEALTHY}
    causes = set(case.label.top) | set(case.label.also) | set(case.label.may)
    assert case.label.top and causes <= known, f"unknown causes {causes - known}"
    assert HEALTHY not in set(case.label.also) | set(case.label.may)
    assert case.label.origin in ("public", "public-issue")
    assert case.basis.strip(), "every label says what it rests on"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_holdout_flag_follows_the_hash_rule(case):
    assert case.holdout == holdout_by_rule(case.name)


@pytest.mark.parametrize("case_dir", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_provenance_names_the_source_and_the_label(case_dir):
    provenance = case_dir / "PROVENANCE.md"
    assert provenance.is_file()
    text = provenance.read_text(encoding="utf-8")
    assert "- repository: " in text or "- thread: " in text
    if "- repository: " in text:
        assert "- commit: " in text and "read_file" in text, "a committed file is read with the search tool's read_file"
    assert "## Label" in text and "## What the author said" in text
    data = [p for p in case_dir.iterdir() if p.is_file() and p.name != "PROVENANCE.md"]
    assert data and all(p.stat().st_size > 0 for p in data)


@pytest.mark.parametrize("case_dir", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_case_ingests_into_a_usable_series(case_dir):
    run = load_run(case_dir)
    finite = {name: int(sum(1 for v in run.epochs[name] if isinstance(v, float) and math.isfinite(v)))
              for name in run.epochs.columns}
    usable = {name: n for name, n in finite.items() if n and name in ("train_loss", "eval_loss", "eval_top1", "lr")}
    assert usable, f"{case_dir.name}: no usable epoch series (columns {sorted(finite)})"
