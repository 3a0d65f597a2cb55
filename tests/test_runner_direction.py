"""Issue 17 item 12: a hypothesis' treatment moves the setting the way its cause asserts (torch-free).

Runs are bundled real timm runs; the causes' directions come from the shipped catalog (rules/causes.yaml)."""

from __future__ import annotations

import pytest

from conftest import FIXTURE_RUNS
from mnv4_postmortem.analyzer.engine.loader import load_rules
from mnv4_postmortem.analyzer.session import Analyzer
from mnv4_postmortem.runner.spec import build_spec
from mnv4_postmortem.runner.targets import Target, hold_to_direction, select_targets


@pytest.fixture(scope="module")
def analyzer():
    return Analyzer()


@pytest.fixture(scope="module")
def pack(analyzer):
    return analyzer.pack


def _held(analyzer, run_name: str, cause: str) -> tuple[Target, dict]:
    run = analyzer.load(FIXTURE_RUNS / run_name)
    [target] = select_targets(run, analyzer.diagnose(run), analyzer, [cause])
    original = dict(build_spec(run, data="proxy").original_args)
    return hold_to_direction(target, original, analyzer.pack.treatments), original


def test_the_catalog_declares_the_directions(pack):
    assert pack.treatments["lr-too-low"] == {"lr": "higher"}
    assert pack.treatments["lr-too-high"] == {"lr": "lower"}
    assert pack.treatments["warmup-too-long"] == {"warmup_epochs": "lower"}


def test_lr_too_low_at_a_high_lr_raises_the_lr(analyzer):
    target, original = _held(analyzer, "v1_lr_high", "lr-too-low")  # SGD at lr 1.0
    assert target.patch["lr"] > original["lr"]
    assert "higher, as lr-too-low asserts" in target.direction and not target.untestable


def test_lr_too_high_at_a_tiny_lr_lowers_the_lr(analyzer):
    target, original = _held(analyzer, "convnext_shapes_adamw_lr1e-7_v1", "lr-too-high")
    assert target.patch["lr"] < original["lr"]
    assert "lower, as lr-too-high asserts" in target.direction


def test_a_fired_finding_whose_fix_already_agrees_is_kept(analyzer):
    target, original = _held(analyzer, "v1_lr_high", "lr-too-high")
    run = analyzer.load(FIXTURE_RUNS / "v1_lr_high")
    fired = {f.cause: f for f in analyzer.diagnose(run).findings}["lr-too-high"]
    assert target.patch["lr"] == fired.fix.args["lr"] < original["lr"]


def test_warmup_too_long_without_warmup_is_untestable(analyzer):
    target, original = _held(analyzer, "v1_lr_high", "warmup-too-long")
    assert not original.get("warmup_epochs")
    assert target.untestable and "warmup_epochs should go lower" in target.untestable


def test_a_user_catalog_entry_needs_a_known_direction(tmp_path):
    (tmp_path / "causes.yaml").write_text("- id: slow-data\n  description: Data loading is slow\n"
                                          "  treatment: {workers: sideways}\n")
    loaded = load_rules([tmp_path])
    assert any("treatment" in str(e) and "lower | higher" in str(e) for e in loaded.errors)
