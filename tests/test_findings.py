"""Findings: ranking with `explains`, the differential, and the JSON shape."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnv4_postmortem.analyzer.findings import (
    Considered,
    Evidence,
    EvidenceRef,
    Finding,
    Fix,
    Severity,
    differential,
    make_ranking,
    rank,
    to_json_dict,
)


def finding(rule_id: str, severity: Severity = Severity.ERROR, confidence: float = 0.5, specificity: int = 1,
            explains: tuple[str, ...] = (), cause: str | None = None, ruled_out: str | None = None,
            role: str = "cause", fix: Fix | None = None) -> Finding:
    return Finding(rule_id=rule_id, cause=cause or rule_id, severity=severity, confidence=confidence,
                   title=f"{rule_id} title", specificity=specificity, explains=explains, ruled_out=ruled_out,
                   role=role, fix=fix)


def ids(findings) -> list[str]:
    return [f.rule_id for f in findings]


def test_severity_parse_and_order():
    assert Severity.parse("Warning") is Severity.WARNING
    assert Severity.parse(Severity.CRITICAL) is Severity.CRITICAL
    assert Severity.INFO < Severity.WARNING < Severity.ERROR < Severity.CRITICAL
    assert Severity.ERROR.label == "error"
    with pytest.raises(ValueError, match="info, warning, error, critical"):
        Severity.parse("fatal")


def test_rank_orders_by_severity_then_specificity_then_confidence():
    found = [
        finding("a", Severity.WARNING, 0.9, 5),
        finding("b", Severity.ERROR, 0.2, 1),
        finding("c", Severity.ERROR, 0.9, 1),
        finding("d", Severity.ERROR, 0.1, 3),
        finding("e", Severity.CRITICAL, 0.1, 1),
    ]
    assert ids(rank(found)) == ["e", "d", "c", "b", "a"]
    assert ids(rank(reversed(found))) == ["e", "d", "c", "b", "a"]  # independent of input order


def test_an_explained_cause_ranks_below_its_explainer_even_when_more_severe():
    divergence = finding("divergence", Severity.CRITICAL, 0.9)
    lr_high = finding("lr-too-high", Severity.ERROR, 0.6, explains=("divergence",))
    other = finding("incomplete-run", Severity.WARNING)
    assert ids(rank([divergence, other, lr_high])) == ["lr-too-high", "divergence", "incomplete-run"]


def test_explains_only_demotes_when_the_explainer_fired_and_cycles_terminate():
    lr_high = finding("lr-too-high", Severity.WARNING, explains=("ema-lag",))
    ema = finding("ema-lag", Severity.ERROR, explains=("lr-too-high",))
    assert ids(rank([lr_high, ema])) == ["ema-lag", "lr-too-high"]  # a cycle falls back to severity
    assert ids(rank([finding("ema-lag", Severity.ERROR, explains=("no-learning",))])) == ["ema-lag"]


def test_same_cause_does_not_explain_itself():
    one = finding("ema-lag-a", Severity.ERROR, cause="ema-lag", explains=("ema-lag",))
    two = finding("ema-lag-b", Severity.CRITICAL, cause="ema-lag")
    assert ids(rank([one, two])) == ["ema-lag-b", "ema-lag-a"]


def test_differential_says_why_each_alternative_ranks_lower():
    ema = finding("ema-lag", Severity.ERROR, 0.88, explains=("lr-too-high",))
    lr_high = finding("lr-too-high", Severity.WARNING, 0.4, ruled_out="lr 0.6 is high, but train loss falls steadily")
    low_sev = finding("wasted-epochs", Severity.INFO, 0.9)
    less_specific = finding("overfitting", Severity.ERROR, 0.95, specificity=0)
    ranked = rank([lr_high, low_sev, ema, less_specific])
    assert differential(ranked) == (
        "overfitting (error, confidence 0.95): less specific than ema-lag (0 vs 1 conditions).",
        "lr-too-high (warning, confidence 0.40): lr 0.6 is high, but train loss falls steadily; "
        "ema-lag alone explains the same symptoms.",
        "wasted-epochs (info, confidence 0.90): less severe than ema-lag (error).",
    )


def test_differential_lists_considered_rules_once_per_cause():
    top = finding("ema-lag", explains=("lr-too-low",))
    second = finding("lr-too-high", confidence=0.1)
    considered = [
        Considered("lr-too-low-rule", "lr-too-low", "t", "train loss fell by 71.1%."),
        Considered("lr-too-high-other", "lr-too-high", "t", "already covered"),
        Considered("warmup", "warmup-too-long", "t", None),
    ]
    assert differential(rank([top, second]), considered) == (
        "lr-too-high (error, confidence 0.10): less confident than ema-lag (0.10 vs 0.50).",
        "lr-too-low (considered, did not fire): train loss fell by 71.1%; ema-lag explains these symptoms.",
        "warmup-too-long (considered, did not fire): its rule's conditions did not hold.",
    )
    assert differential([], considered[2:]) == (
        "warmup-too-long (considered, did not fire): its rule's conditions did not hold.",
    )


def test_make_ranking_ranks_and_skips_considered_rules_that_fired():
    top = finding("ema-lag", explains=("lr-too-high",))
    lower = finding("lr-too-high", Severity.CRITICAL)
    warm = Considered("warm", "warmup-too-long", "t")
    ranking = make_ranking([lower, top], [Considered("lr-too-high", "lr-too-high", "t", "x"), warm])
    assert ids(ranking.findings) == ["ema-lag", "lr-too-high"]
    assert ranking.considered == (warm,)
    assert len(ranking.differential) == 2


def test_json_shape_is_exact():
    full = Finding(
        rule_id="ema-lag", cause="ema-lag", severity=Severity.ERROR, confidence=0.88456, title="EMA lag",
        evidence=(Evidence("decay 0.9999", (EvidenceRef("summary.csv", line=2, epochs=(0, 11)),
                                            EvidenceRef("events.out.tfevents.1", record=7))),
                  Evidence("flat")),
        epochs=(0, 11),
        fix=Fix(args={"model_ema_warmup": True, "model_ema_decay": np.float64(0.97396), "lr": float("nan")},
                command="python train.py --model-ema-warmup", note="n", safety="recipe-change"),
    )
    assert to_json_dict(full) == {
        "rule_id": "ema-lag", "cause": "ema-lag", "severity": "error", "confidence": 0.885, "title": "EMA lag",
        "evidence": [
            {"text": "decay 0.9999", "refs": [{"file": "summary.csv", "line": 2, "epochs": [0, 11]},
                                              {"file": "events.out.tfevents.1", "record": 7, "epochs": None}]},
            {"text": "flat", "refs": []},
        ],
        "epochs": [0, 11], "role": "cause", "latent": False, "facts": {}, "symptoms": [], "score": None,
        "rules": ["ema-lag"],
        "fix": {"args": {"model_ema_warmup": True, "model_ema_decay": 0.97396, "lr": None},
                "command": "python train.py --model-ema-warmup", "note": "n", "safety": "recipe-change"},
    }
    bare = to_json_dict(finding("x", Severity.INFO, 1 / 3))
    assert bare["epochs"] is None and bare["fix"] is None and bare["confidence"] == 0.333
    json.dumps(to_json_dict(full), allow_nan=False)


def test_fix_args_are_read_only():
    fix = Fix(args={"lr": 0.1}, command=None)
    with pytest.raises(TypeError):
        fix.args["lr"] = 1.0  # type: ignore[index]


# ---------------------------------------------------------------------------------------------------------
# causal chain: causes, latent causes, consequences (issue 10)


def test_a_consequence_ranks_below_every_cause_whatever_its_severity_or_specificity():
    stopped = finding("incomplete-run", Severity.WARNING, 0.9, 9, role="consequence")
    never_learns = finding("no-learning", Severity.ERROR, 0.6, 1)
    hint = finding("input-size-mismatch", Severity.WARNING, 0.5, 1)
    ranked = rank([stopped, never_learns, hint])
    assert ids(ranked) == ["no-learning", "input-size-mismatch", "incomplete-run"]
    sentences = differential(ranked)
    assert "a consequence, not a cause" in sentences[-1] and "no-learning" in sentences[-1]


def test_an_info_note_never_stands_above_a_warning_whatever_its_tier():
    """Issue 13: a config suspicion at info (no curve backs it) ranked first made a stopped run read as
    over-regularized; the report leads with what it calls a problem."""
    stopped = finding("incomplete-run", Severity.WARNING, 0.75, 1, role="consequence")
    smell = finding("over-regularization", Severity.INFO, 0.5, 2)
    assert ids(rank([smell, stopped])) == ["incomplete-run", "over-regularization"]
    # Among notes alone the tiers still hold.
    quiet = finding("incomplete-run", Severity.INFO, 0.75, 1, role="consequence")
    assert ids(rank([quiet, smell])) == ["over-regularization", "incomplete-run"]


def test_a_consequence_alone_is_the_top_finding():
    assert ids(rank([finding("incomplete-run", Severity.WARNING, role="consequence")])) == ["incomplete-run"]


def test_latent_ranks_below_causes_and_is_marked():
    latent = finding("ema-lag-latent", Severity.ERROR, 0.85, cause="ema-lag", role="latent")
    lr_high = finding("lr-too-high", Severity.ERROR, 0.8, explains=("ema-lag",))
    warn = finding("over-regularization", Severity.WARNING, 0.5)
    wasted = finding("wasted-epochs", Severity.INFO, role="consequence")
    ranked = rank([latent, wasted, warn, lr_high])
    assert ids(ranked) == ["lr-too-high", "over-regularization", "ema-lag-latent", "wasted-epochs"]
    assert ranked[2].latent and not ranked[0].latent
    assert any(s.startswith("ema-lag (error") and "latent: lr-too-high masks" in s for s in differential(ranked))


def test_explained_but_more_severe_says_so_in_the_differential():
    ranked = rank([finding("no-learning", Severity.ERROR), finding("over-regularization", Severity.WARNING, explains=("no-learning",))])
    assert ids(ranked) == ["over-regularization", "no-learning"]
    assert "ranks below it although error" in differential(ranked)[0]


def test_combined_fix_merges_the_top_fix_with_every_latent_fix():
    lr_fix = Fix(args={"lr": 0.025}, command=None, safety="recipe-change")
    ema_fix = Fix(args={"model_ema_warmup": True, "model_ema_decay": 0.9731, "lr": 1.0}, command=None)
    found = [
        finding("lr-too-high", Severity.ERROR, 0.9, fix=lr_fix),
        finding("ema-lag-latent", Severity.WARNING, 0.85, cause="ema-lag", role="latent", fix=ema_fix),
    ]
    fix = make_ranking(found).combined_fix
    assert fix is not None and dict(fix.args) == {"lr": 0.025, "model_ema_warmup": True, "model_ema_decay": 0.9731}
    assert fix.command is None  # the pipeline renders the command line, with the run's own arguments
    assert "lr-too-high + ema-lag" in fix.note and fix.safety == "recipe-change"
    assert make_ranking(found[:1]).combined_fix is None  # nothing latent: the top fix is the fix


def test_a_latent_finding_whose_cause_is_visible_is_dropped():
    visible = finding("ema-lag", Severity.ERROR, 0.9)
    latent = finding("ema-lag-latent", Severity.WARNING, 0.85, cause="ema-lag", role="latent")
    assert ids(make_ranking([latent, visible]).findings) == ["ema-lag"]


def test_json_carries_role_latent_and_facts():
    f = Finding(rule_id="ema-lag", cause="ema-lag", severity=Severity.ERROR, confidence=0.9, title="t",
                role="latent", facts={"ema_catch_up_epoch": np.int64(112)})
    doc = to_json_dict(f)
    assert doc["role"] == "latent" and doc["latent"] is True and doc["facts"] == {"ema_catch_up_epoch": 112}
    json.dumps(doc)
