"""Issue 13, part A: one finding per cause, a cause's severity from its own evidence, and the EMA evidence of
ema-lag-symptoms (no EMA evaluated counts against; `Test (EMA):` at chance while `Test:` learns counts for).
Each test failed before the change it names and passes after it."""

from __future__ import annotations

import textwrap
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mnv4_postmortem.analyzer.engine import evaluate, load_pack, load_rules
from mnv4_postmortem.analyzer.findings import Evidence, Finding, Fix, Severity, Symptom, make_ranking, merge_by_cause
from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.ingest.synthetic import synthetic_run
from mnv4_postmortem.analyzer.pipeline import diagnose

from conftest import FIXTURE_RUNS


@pytest.fixture(scope="module")
def pack():
    return load_pack()


@pytest.fixture(scope="module")
def seed(pack):
    return diagnose(load_run(FIXTURE_RUNS / "seed_mnv4"), pack)


# ---------------------------------------------------------------------------------------------------------
# One finding per cause


def test_seed_report_names_each_cause_once_with_the_union_of_its_rules_evidence(seed):
    causes = Counter((f.cause, f.role) for f in seed.findings)
    assert all(n == 1 for n in causes.values()), causes
    (ema,) = [f for f in seed.findings if f.cause == "ema-lag"]
    assert set(ema.rules) == {"ema-lag", "ema-lag-symptoms"} and ema.rules[0] == ema.rule_id
    text = "\n".join(e.text for e in ema.evidence)
    # ema-lag's update count and ema-lag-symptoms' config signal, in one finding.
    assert "372 optimizer updates" in text and "model_ema is on" in text
    assert len({e.text for e in ema.evidence}) == len(ema.evidence)  # each line once


def test_seed_sgd_recipe_names_lr_too_high_once_with_one_fix(pack):
    report = diagnose(load_run(FIXTURE_RUNS / "seed_mnv4_sgd_lr06"), pack)
    (lr,) = [f for f in report.findings if f.cause == "lr-too-high"]
    assert len(lr.rules) == 3 and lr.fix is not None and lr.fix.args["lr"] < 0.6


def _f(rule_id: str, confidence: float, *, epochs, lines, fix=None, score=None, symptoms=()) -> Finding:
    return Finding(rule_id=rule_id, cause="lr-too-high", severity=Severity.ERROR, confidence=confidence,
                   title=rule_id, evidence=tuple(Evidence(t) for t in lines), epochs=epochs, fix=fix, score=score,
                   symptoms=symptoms, strength=3.0 if symptoms else 0.0)


def test_merge_keeps_the_best_rules_fix_and_confidence_and_the_union_of_evidence_and_epochs():
    stuck = Symptom("stuck-at-prior", "stuck", Severity.ERROR, 2.0)
    best = _f("a", 0.9, epochs=(0, 11), lines=("shared", "a only"), fix=Fix({"lr": 0.01}, None), score=3.0,
              symptoms=("stuck-at-prior",))
    other = _f("b", 0.95, epochs=(3, 14), lines=("shared", "b only"), fix=Fix({"lr": 0.02}, None))
    (merged,) = merge_by_cause([other, best], [stuck])
    assert merged.rule_id == "a" and merged.rules == ("a", "b")  # the scored rule explaining a symptom ranks first
    assert [e.text for e in merged.evidence] == ["shared", "a only", "b only"]
    assert merged.confidence == 0.95 and merged.epochs == (0, 14) and merged.fix.args["lr"] == 0.01
    assert merged.symptoms == ("stuck-at-prior",) and merged.strength == 2.0
    # A latent finding of a cause that is also visible is dropped, not merged into the visible one.
    latent = replace(other, rule_id="c", role="latent")
    assert [f.rule_id for f in make_ranking([best, latent]).findings] == ["a"]


# ---------------------------------------------------------------------------------------------------------
# Severity from a cause's own evidence


def test_seed_speculative_causes_are_not_errors_and_ema_lag_leads(seed):
    assert seed.findings[0].cause == "ema-lag" and seed.findings[0].severity == Severity.ERROR
    others = {f.cause: f.severity for f in seed.findings[1:]}
    assert others.get("over-regularization", Severity.INFO) < Severity.ERROR, others
    assert others.get("no-learning", Severity.INFO) < Severity.ERROR, others


SYMPTOM = """\
id: flat
kind: symptom
title: Flat
severity: error
when: series.flat == True
strength: 2
candidates: [no-learning, over-regularization]
evidence: ["flat"]
"""
CAUSE = """\
id: {id}
title: Cause {id}
cause: {cause}
severity: warning
evidence: ["cause"]
symptoms: [flat]
bar: 1
signals:
  - when: config.for_it == True
    weight: 1
    why: test
  - when: config.against_it == True
    weight: -1.5
    why: test
"""


def _scored_pack(tmp_path: Path):
    (tmp_path / "flat.yaml").write_text(SYMPTOM)
    (tmp_path / "c.yaml").write_text(CAUSE.format(id="c", cause="no-learning"))
    pack = load_rules([tmp_path])
    assert pack.errors == (), [str(e) for e in pack.errors]
    return pack


@pytest.mark.parametrize("config, severity", [
    ({"for_it": True}, Severity.ERROR),       # the evidence singles it out: the symptom's severity
    ({}, Severity.WARNING),                   # no evidence either way: the rule's own
    ({"for_it": True, "against_it": True}, Severity.WARNING),  # more against than for: at most warning
])
def test_a_scored_cause_takes_its_symptoms_severity_only_on_evidence_of_its_own(tmp_path, config, severity):
    result = evaluate(_scored_pack(tmp_path), {"series": {"flat": True}, "config": config})
    (finding,) = result.findings
    assert finding.severity == severity


# ---------------------------------------------------------------------------------------------------------
# ema-lag-symptoms: what the EMA evidence weighs


def _stuck_eval_run(**extra):
    # Eval at chance for 10 epochs on 10 classes while the train loss falls: eval-stuck-while-train-learns.
    series = {"train_loss": list(np.linspace(2.3, 0.95, 10)), "eval_loss": [2.31] * 10, "eval_top1": [10.0] * 10}
    series.update(extra)
    return synthetic_run({"num_classes": 10, "epochs": 10}, series)


def _ema_lag_symptoms(report):
    found = [f for f in report.findings if "ema-lag-symptoms" in (f.rules or (f.rule_id,))]
    return found[0] if found else None


def test_a_trainer_that_evaluates_the_raw_model_counts_against_ema_lag(pack):
    unknown = diagnose(_stuck_eval_run(), pack)
    assert _ema_lag_symptoms(unknown) is not None  # missing evidence counts neither way: the curve carries it
    deit = diagnose(replace(_stuck_eval_run(), trainer="deit"), pack)
    assert _ema_lag_symptoms(deit) is None
    (why,) = [c for c in deit.considered if c.rule_id == "ema-lag-symptoms"]
    assert "evaluates the raw model" in why.reason


def test_test_ema_at_chance_while_test_learns_counts_for_ema_lag(pack):
    # The model's own Test: rises 10 -> 19 (a gap under ema-eval-behind-model's 10 points), Test (EMA): at chance.
    model = list(np.linspace(10, 19, 10))
    learns = _ema_lag_symptoms(diagnose(_stuck_eval_run(eval_top1_model=model, eval_top1_ema=[10.0] * 10), pack))
    without = _ema_lag_symptoms(diagnose(_stuck_eval_run(), pack))
    assert learns is not None and without is not None
    assert learns.score == pytest.approx(without.score + 2 + 1)  # +2 the lag seen, +1 `Test (EMA):` lines exist
    assert any("`Test (EMA):` top-1 stays at most" in e.text for e in learns.evidence)


def test_raw_model_stuck_too_leaves_the_ema_to_the_latent_rule(pack):
    # Test: at chance as well: the model itself holds the eval there; an EMA lag explains nothing visible.
    stuck = _stuck_eval_run(eval_top1_model=[10.0, 11.0] * 5, eval_top1_ema=[10.0] * 10)
    assert _ema_lag_symptoms(diagnose(stuck, pack)) is None


def test_ema_lag_symptoms_text_does_not_claim_the_model_learns_when_train_loss_is_stuck(pack):
    # summary rows of a run stuck at the prior (train loss too): the evidence must not say the weights improve
    series = {"train_loss": [2.32, 2.31, 2.305] + [2.303] * 9, "eval_loss": [2.303] * 12, "eval_top1": [10.0] * 12}
    report = diagnose(synthetic_run({"num_classes": 10, "epochs": 12}, series), pack)
    finding = _ema_lag_symptoms(report)
    if finding is not None:
        assert not any("the weights being trained improve" in e.text for e in finding.evidence)
    else:  # not named at all: then nothing claims the model improves either
        assert all("the weights being trained improve" not in e.text for f in report.findings for e in f.evidence)


# ---------------------------------------------------------------------------------------------------------
# Calibration: a symptom two causes claim is shared in their stated confidence


def _two_claimants_pack(tmp_path: Path, strength: int = 2):
    (tmp_path / "flat.yaml").write_text(SYMPTOM.replace("strength: 2", f"strength: {strength}"))
    (tmp_path / "c.yaml").write_text(CAUSE.format(id="c", cause="no-learning"))
    (tmp_path / "d.yaml").write_text(CAUSE.format(id="d", cause="over-regularization").replace("for_it", "for_d")
                                     .replace("against_it", "against_d"))
    pack = load_rules([tmp_path])
    assert pack.errors == (), [str(e) for e in pack.errors]
    return pack


def test_one_claimant_states_the_plain_logistic_of_its_total(tmp_path):
    (finding,) = evaluate(_scored_pack(tmp_path), {"series": {"flat": True}, "config": {"for_it": True}}).findings
    assert finding.confidence == pytest.approx(min(0.97, 1 / (1 + np.exp(-2 * (3 - 1)))))


def test_two_claimants_share_the_symptom_by_their_signals(tmp_path):
    pack = _two_claimants_pack(tmp_path)
    even = evaluate(pack, {"series": {"flat": True}, "config": {}}).findings
    # Neither has a signal: each states half of the plain logistic of its total (2 at bar 1).
    assert [f.confidence for f in even] == pytest.approx([0.5 / (1 + np.exp(-2 * 1))] * 2)
    tilted = {f.cause: f.confidence for f in
              evaluate(pack, {"series": {"flat": True}, "config": {"for_it": True}}).findings}
    assert tilted["no-learning"] > 0.8 > 0.2 > tilted["over-regularization"]


def test_a_claimant_the_evidence_outweighs_goes_to_the_differential(tmp_path):
    # d fires (3 - 1.5 >= its bar 1) but c's evidence (+1 against d's -1.5) leaves d a share under 1 in 20.
    pack = _two_claimants_pack(tmp_path, strength=3)
    result = evaluate(pack, {"series": {"flat": True}, "config": {"for_it": True, "against_d": True}})
    assert [f.cause for f in result.findings] == ["no-learning"]
    (out,) = [c for c in result.considered if c.rule_id == "d"]
    assert "outweighs" in out.reason


def test_seed_no_learning_is_outweighed_by_the_ema_lag_the_log_shows(seed):
    assert "no-learning" not in {f.cause for f in seed.findings}
    assert any(c.cause == "no-learning" and "outweighs" in (c.reason or "") for c in seed.considered)


def test_seed_json_lists_every_rule_of_a_cause_and_marks_the_outweighed(seed):
    from conftest import report_json
    from mnv4_postmortem.analyzer.render.json_render import render

    document = report_json(render(seed))  # validated against the shipped schema
    (ema,) = [f for f in document["findings"] if f["cause"] == "ema-lag"]
    assert sorted(ema["rules"]) == ["ema-lag", "ema-lag-symptoms"]
    outweighed = {c["cause"] for c in document["considered"] if c.get("outweighed")}
    assert "no-learning" in outweighed
    assert all("outweighed" not in c for c in document["considered"] if c["cause"] not in outweighed)
