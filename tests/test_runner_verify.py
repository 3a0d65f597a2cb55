"""Verdict logic and the verification.json reader (torch-free)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import REPO
from mnv4_postmortem.runner.verify import SeedPair, decide, paired_bootstrap, paired_t


def _pair(seed, fc, ft, c, t, n=200):
    # per-sample correctness consistent with the accuracies (c% and t% of n images right)
    return SeedPair(seed, fc, ft, c, t, [1] * int(n * c / 100) + [0] * (n - int(n * c / 100)),
                    [1] * int(n * t / 100) + [0] * (n - int(n * t / 100)))


def test_paired_t_matches_scipy():
    from scipy import stats

    diffs = [3.0, 5.0, 4.0]
    low, high = paired_t(diffs)
    ref = stats.t.interval(0.95, 2, loc=4.0, scale=stats.sem(diffs))
    assert (low, high) == pytest.approx(ref)
    assert paired_t([1.0]) is None


def test_two_agreeing_seeds_with_a_clear_effect_are_confirmed_by_both_intervals():
    verdict = decide([_pair(0, True, False, 10, 34), _pair(1, True, False, 13, 36)])
    assert verdict.verdict == "confirmed"
    assert verdict.effect.decided_by == "t+bootstrap"
    assert verdict.effect.ci[0] > 0 and verdict.effect.bootstrap_ci[0] > 0


def test_two_seeds_need_the_seed_level_interval_too():
    # issue 17 item 13: the bootstrap over eval samples excludes 0 (+59 and +38 points on 300 images each),
    # but two seeds that far apart leave the seed-level t interval (df 1) spanning 0: not confirmed.
    pairs = [_pair(0, True, False, 30, 89, n=300), _pair(1, True, False, 44, 82, n=300)]
    verdict = decide(pairs)
    assert verdict.effect.bootstrap_ci[0] > 0 and verdict.effect.ci[0] <= 0
    assert verdict.verdict == "inconclusive"
    assert "seed-level (paired t)" in verdict.reason and "--seeds" in verdict.settle
    # the same effect with a third seed in line is confirmed (the CLI default is 3 seeds)
    three = decide(pairs + [_pair(2, True, False, 35, 84, n=300)])
    assert three.verdict == "confirmed"


def test_cli_default_is_three_seeds():
    from mnv4_postmortem.runner.verify import DEFAULT_SEEDS
    from mnv4_postmortem.cli import cli

    assert DEFAULT_SEEDS == 3
    help_text = CliRunner().invoke(cli, ["reproduce", "--help"]).output
    assert "default 3" in help_text


def test_three_seeds_are_decided_by_the_t_interval_and_the_bootstrap():
    verdict = decide([_pair(0, True, False, 10, 34), _pair(1, True, False, 13, 36), _pair(2, True, False, 11, 30)])
    assert verdict.verdict == "confirmed" and verdict.effect.decided_by == "t+bootstrap"
    noisy = decide([_pair(0, True, False, 10, 34), _pair(1, True, False, 30, 28), _pair(2, True, False, 11, 30)])
    assert noisy.verdict == "inconclusive" and "seeds disagree" in noisy.reason and "--seeds" in noisy.settle


def test_refuted_when_the_control_does_not_reproduce_or_the_fix_does_not_help():
    assert decide([_pair(0, False, False, 40, 41), _pair(1, False, False, 42, 40)]).verdict == "refuted"
    still = decide([_pair(0, True, True, 10, 12), _pair(1, True, True, 10, 11)])
    assert still.verdict == "refuted" and "does not remove" in still.reason
    worse = decide([_pair(0, True, False, 30, 20), _pair(1, True, False, 30, 25)])
    assert worse.verdict == "refuted" and "does not help" in worse.reason


def test_a_hypothesis_that_makes_things_worse_is_refuted_for_that_first():
    # a false cause that does not fire in the control AND whose treatment hurts: both reasons, the
    # treatment's own effect first (issue 17 item 12: refuted because the raised LR does not help)
    verdict = decide([_pair(0, False, False, 40, 10), _pair(1, False, False, 42, 12)])
    assert verdict.verdict == "refuted"
    assert verdict.reason.startswith("the fix does not help") and "does not reproduce" in verdict.reason


def test_effect_metric_says_reported_only_for_the_reported_metric():
    pairs = [_pair(0, True, False, 10, 34), _pair(1, True, False, 13, 36)]
    assert "(reported)" in decide(pairs, "eval_top1").effect.to_json()["metric"]
    raw = decide(pairs, "eval_top1_model").effect.to_json()["metric"]
    assert "(reported)" not in raw and "raw model" in raw


def test_both_arms_at_the_ceiling_cannot_be_separated():
    verdict = decide([_pair(0, True, False, 100, 100), _pair(1, True, False, 99, 100)])
    assert verdict.verdict == "inconclusive" and "could not separate" in verdict.reason
    assert "separable" in verdict.checks


def test_partial_verification_names_the_arms_that_finished():
    from types import SimpleNamespace

    from mnv4_postmortem.runner.reproduce import _finished_arms_text

    state = SimpleNamespace(seeds=[0, 1], results={("control", 0): {}})
    text = _finished_arms_text(state, "control", "lr-too-high-fix")
    assert "control (seed 0)" in text and "lr-too-high-fix" not in text
    assert "before any arm finished" in _finished_arms_text(SimpleNamespace(seeds=[0], results={}), "control", "x")


def test_val_samples_help_matches_the_spec_default():
    from mnv4_postmortem.cli import cli
    from mnv4_postmortem.runner.spec import DEFAULT_VAL_SAMPLES

    help_text = CliRunner().invoke(cli, ["reproduce", "--help"]).output
    assert f"Validation samples (default {DEFAULT_VAL_SAMPLES})" in " ".join(help_text.split())


def test_one_seed_or_mixed_firing_is_inconclusive():
    assert decide([_pair(0, True, False, 10, 34)]).verdict == "inconclusive"
    mixed = decide([_pair(0, True, False, 10, 34), _pair(1, False, False, 13, 36)])
    assert mixed.verdict == "inconclusive" and "1/2 seeds" in mixed.reason


def test_bootstrap_is_zero_width_for_identical_arms():
    pair = _pair(0, True, True, 30, 30)
    assert paired_bootstrap([pair]) == (0.0, 0.0)


@pytest.mark.parametrize("content,message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"schema": "something-else"}), "not a verification file"),
    (json.dumps({"schema": "mnv4-postmortem/verification", "schema_version": "2.0", "findings": []}), "not supported"),
    (json.dumps({"schema": "mnv4-postmortem/verification", "schema_version": "1.0", "findings": [{}]}), "verdict"),
])
def test_report_names_a_bad_verification_file_and_exits_2(tmp_path, content, message):
    from mnv4_postmortem.cli import cli

    (tmp_path / "verification.json").write_text(content)
    result = CliRunner().invoke(cli, ["report", str(REPO / "fixtures/runs/seed_mnv4"), "--verification", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.output and "verification.json" in result.output


def test_html_section_shows_hostile_strings_as_text(tmp_path):
    from mnv4_postmortem.analyzer.render.verification import render_verification_html
    from mnv4_postmortem.analyzer.verification import load_verification

    hostile = "<script>alert(1)</script>"
    doc = {"schema": "mnv4-postmortem/verification", "schema_version": "1.0", "complete": True, "seeds": [0],
           "trainer": hostile, "findings": [{"finding": hostile, "verdict": "refuted", "reason": "<b>x</b>",
                                             "metric": "eval_top1", "arms": [], "effect": None}]}
    (tmp_path / "verification.json").write_text(json.dumps(doc))
    html = render_verification_html(load_verification(tmp_path))
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and html.lstrip().startswith('<section id="verification">')
