"""Evaluating rules over fake namespaces: when -> epochs -> for -> confidence -> evidence -> fix."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from _engine_fakes import GOOD_RULES, RUNS, SCHEMA, diagnose, load_run
from mnv4_postmortem.analyzer.engine import evaluate, evaluate_rules, load_rules
from mnv4_postmortem.analyzer.engine.templating import compile_template
from mnv4_postmortem.analyzer.findings import Considered, Finding, Severity
from mnv4_postmortem.analyzer.model import SourceRef

BASE = """\
id: {id}
title: A test rule
cause: ema-lag
severity: warning
evidence: ["lr {{{{ config.lr }}}}"]
"""


def make_pack(tmp_path: Path, **rules: str):
    """Write rules (id -> extra YAML lines) into tmp_path and load them; the pack must load clean."""
    for rule_id, extra in rules.items():
        (tmp_path / f"{rule_id}.yaml").write_text(BASE.format(id=rule_id) + textwrap.dedent(extra))
    pack = load_rules([tmp_path])
    assert pack.errors == (), [str(e) for e in pack.errors]
    return pack


@pytest.fixture(scope="module")
def good_pack():
    pack = load_rules([GOOD_RULES], known_names=SCHEMA)
    assert pack.errors == ()
    return pack


def test_real_ema_lag_run_gives_a_full_finding(good_pack):
    namespace, meta = diagnose(load_run(RUNS / "v1_ema_lag"))
    result = evaluate(good_pack, namespace, pipeline_meta=meta)
    assert result.warnings == ()
    (finding,) = [f for f in result.findings if f.rule_id == "example-ema-lag"]
    assert finding.cause == "ema-lag" and finding.severity is Severity.ERROR
    assert finding.epochs == (0, 11)
    share = 0.9999 ** (32 * 12)
    assert finding.confidence == pytest.approx(0.5 + 0.4 * share)
    assert finding.evidence[0].text == (
        f"EMA decay 0.9999 after 384 updates still holds {share * 100:.1f}% of the initial weights"
    )
    assert finding.evidence[1].text.endswith("(summary.csv:2-13)")
    assert len(finding.evidence[1].refs) == 12
    first = finding.evidence[1].refs[0]
    assert first.file.endswith("v1_ema_lag/summary.csv") and first.line == 2 and str(first).endswith("summary.csv:2")
    assert dict(finding.fix.args) == {"model_ema_warmup": True, "model_ema_decay": round(1 - 10 / 384, 5)}
    assert finding.fix.safety == "recipe-change"
    assert finding.fix.command.startswith("python train.py /data/shapes10 --model mobilenetv4_conv_small ")
    assert "--model-ema --model-ema-decay 0.97396 --model-ema-warmup" in finding.fix.command
    assert finding.explains == ("lr-too-low", "no-learning")
    assert finding.ruled_out == f"the EMA still holds {share * 100:.1f}% of the initial weights"
    # The healthy twin of the same recipe: silent.
    healthy, meta = diagnose(load_run(RUNS / "v1_healthy"))
    assert [f.rule_id for f in evaluate_rules(good_pack, healthy, pipeline_meta=meta)] == []


def test_without_args_the_fix_has_no_command(good_pack):
    namespace, _ = diagnose(load_run(RUNS / "v1_ema_lag"))
    (finding,) = [f for f in evaluate_rules(good_pack, namespace) if f.rule_id == "example-ema-lag"]
    assert finding.fix is not None and finding.fix.command is None


@pytest.mark.parametrize(("first", "last", "fires"), [(0, 2, True), (4, 9, True), (0, 1, False), (5, 5, False)])
def test_for_counts_inclusive_epochs(tmp_path, first, last, fires):
    pack = make_pack(tmp_path, held="when: 'True'\nepochs: derived.span\nfor: 3\n")
    findings = evaluate_rules(pack, {"derived": {"span": [first, last]}})
    assert bool(findings) is fires
    if fires:
        assert findings[0].epochs == (first, last)


def test_for_without_known_epochs_does_not_fire(tmp_path):
    pack = make_pack(tmp_path, held="when: 'True'\nepochs: derived.span\nfor: 1\n")
    assert evaluate_rules(pack, {"derived": {}}) == []


@dataclass
class Segment:
    epochs: tuple[float, float]


def test_epochs_from_segment_like_objects(tmp_path):
    pack = make_pack(tmp_path, seg="when: 'True'\nepochs: derived.segment\n")
    assert evaluate_rules(pack, {"derived": {"segment": Segment((2.0, 7.0))}})[0].epochs == (2, 7)
    assert evaluate_rules(pack, {"derived": {"segment": {"epochs": [1, 3]}}})[0].epochs == (1, 3)
    assert evaluate_rules(pack, {"derived": {"segment": [float("nan"), 3]}})[0].epochs is None


@pytest.mark.parametrize(("value", "expected"), [(1.7, 1.0), (-0.2, 0.0), (0.25, 0.25), (None, 0.5)])
def test_confidence_is_clipped_and_defaults(tmp_path, value, expected):
    pack = make_pack(tmp_path, conf="when: 'True'\nconfidence: derived.c\n")
    result = evaluate(pack, {"derived": {"c": value}})
    assert result.findings[0].confidence == expected
    assert result.warnings == ()


def test_default_specificity_counts_and_clauses(tmp_path):
    pack = make_pack(tmp_path, a="when: config.x > 0 and config.y > 0 and config.z\n", b="when: config.x > 0\nspecificity: 7\n")
    assert {r.id: r.specificity for r in pack.rules} == {"a": 3, "b": 7}


def test_a_failing_rule_warns_and_the_others_still_run(tmp_path):
    pack = make_pack(
        tmp_path,
        broken="when: config.model + 1 > 0\n",          # str + int
        fine="when: config.lr > 0.1\n",
    )
    result = evaluate(pack, {"config": {"model": "m", "lr": 0.5}})
    assert [f.rule_id for f in result.findings] == ["fine"]
    (warning,) = result.warnings
    assert warning.level == "warning" and warning.rule_id == "broken" and warning.field == "when"
    assert str(warning).startswith(f"{tmp_path / 'broken.yaml'}:6:7: rule 'broken': field 'when': evaluation failed")


def test_a_namespace_object_that_raises_is_contained(tmp_path):
    class Exploding:
        @property
        def value(self):
            raise RuntimeError("feature bug")

    pack = make_pack(tmp_path, boom="when: derived.thing.value > 1\n", ok="when: 'True'\n")
    result = evaluate(pack, {"derived": {"thing": Exploding()}})
    assert [f.rule_id for f in result.findings] == ["ok"]
    assert "feature bug" in result.warnings[0].message


def test_an_array_as_a_condition_is_a_warning(tmp_path):
    import numpy as np

    pack = make_pack(tmp_path, arr="when: series.x\n")
    result = evaluate(pack, {"series": {"x": np.array([1, 2])}})
    assert result.findings == () and "yes/no" in result.warnings[0].message


def test_a_broken_evidence_line_is_dropped_but_the_finding_stays(tmp_path):
    (tmp_path / "ev.yaml").write_text(
        BASE.format(id="ev").replace(
            'evidence: ["lr {{ config.lr }}"]',
            'evidence: ["lr {{ config.lr }}", "{{ config.lr + config.model }}", "missing: {{ config.nothing }}"]',
        )
        + "when: 'True'\n"
    )
    pack = load_rules([tmp_path])
    result = evaluate(pack, {"config": {"lr": 0.5, "model": "m"}})
    (finding,) = result.findings
    # a line that would print a missing value is not produced (no "missing: n/a"), silently
    assert [e.text for e in finding.evidence] == ["lr 0.5"]
    assert result.warnings[0].field == "evidence[1]" and len(result.warnings) == 1


def test_a_fix_expression_without_data_drops_the_fix(tmp_path):
    pack = make_pack(tmp_path, fx="when: 'True'\nfix:\n  args: {lr: '=derived.lr / 10', warmup_epochs: 5}\n")
    result = evaluate(pack, {"derived": {}})
    assert result.findings[0].fix is None
    # missing data is not a rule error (issue 17 item 1 printed "rule error: ... evaluated to None")
    assert result.warnings == ()
    ok = evaluate(pack, {"derived": {"lr": 0.5}}, pipeline_meta={"args": {"model": "m", "lr": 0.5}})
    assert dict(ok.findings[0].fix.args) == {"lr": 0.05, "warmup_epochs": 5}
    assert ok.findings[0].fix.command == "python train.py --model m --lr 0.05 --warmup-epochs 5"


def test_considered_when_suspected_but_not_fired(tmp_path):
    pack = make_pack(
        tmp_path,
        sus="when: config.lr > 1\nconsidered: config.lr > 0.1\nruled_out: 'lr {{ config.lr }} is high, but loss falls'\n",
    )
    assert evaluate(pack, {"config": {"lr": 0.5}}).considered == (
        Considered("sus", "ema-lag", "A test rule", "lr 0.5 is high, but loss falls"),
    )
    assert evaluate(pack, {"config": {"lr": 0.05}}).considered == ()
    fired = evaluate(pack, {"config": {"lr": 2}})
    assert fired.considered == () and fired.findings[0].ruled_out == "lr 2 is high, but loss falls"


def test_missing_data_makes_rules_silent_not_broken(good_pack):
    result = evaluate(good_pack, {})
    assert result.findings == () and result.warnings == ()


def test_evidence_templates_read_mappings_by_key_and_format_numbers():
    template = compile_template(
        "{{ config.items }} {{ derived.share | pct }} {{ derived.tiny | num }} {{ derived.none | d('unknown', true) }} "
        "{{ cite(series.a, series.b) }}",
        roots=("config", "derived", "series"),
    )
    rendered = template.render(
        {
            "config": {"items": 7},
            "derived": {"share": 0.1234, "tiny": 0.000123456, "none": None},
            "series": {
                "a": {"refs": [SourceRef("run/train.log", line=10), SourceRef("run/train.log", line=14)],
                      "first_epoch": 3, "last_epoch": 4},
                "b": SourceRef("run/args.yaml"),
            },
        }
    )
    assert rendered is not None
    text, refs = rendered
    assert text == "7 12.3% 0.000123 unknown train.log:10-14, args.yaml"
    assert tuple(map(str, refs)) == ("run/train.log:10", "run/train.log:14", "run/args.yaml")
    # structured: a series' refs carry its epoch span; a config file's carry none
    assert [(r.file, r.line, r.epochs) for r in refs] == [
        ("run/train.log", 10, (3, 4)), ("run/train.log", 14, (3, 4)), ("run/args.yaml", None, None)]


def test_findings_come_back_in_pack_order(good_pack):
    namespace, meta = diagnose(load_run(RUNS / "v1_ema_lag"))
    namespace["config"] = {**namespace["config"], "lr": 20.0}
    namespace["events"] = [{"kind": "nonfinite", "epoch": 3}]
    ids = [f.rule_id for f in evaluate_rules(good_pack, namespace)]
    assert ids == [r.id for r in good_pack.rules if r.id in ids]
    assert isinstance(evaluate_rules(good_pack, namespace)[0], Finding)


class _Sentinel:
    """Like the namespace builder's MISSING: falsy, NaN as a number, absorbs attribute access."""

    def __bool__(self):
        return False

    def __float__(self):
        return float("nan")

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self

    def __len__(self):
        return 0

    def __iter__(self):
        return iter(())

    def __str__(self):
        return "n/a"


def test_a_missing_sentinel_behaves_like_none(tmp_path):
    gone = _Sentinel()
    pack = make_pack(
        tmp_path,
        a="when: derived.x.y[0] > 1 or max(derived.x, 2) == 2\nepochs: derived.x.epochs\nconfidence: derived.x\n"
          "fix:\n  args: {lr: 0.1}\n",
        b="when: 'True'\nepochs: derived.x\nfix:\n  args: {lr: '=derived.x'}\n",
        c="when: 'True'\nruled_out: '{{ derived.x | pct }} {{ derived.x }}'\n",
    )
    result = evaluate(pack, {"derived": {"x": gone}, "config": {"lr": gone}})
    # a fix computed from missing data is left out silently, as a fact is: missing data is no rule error
    assert result.warnings == ()
    a, b, c = result.findings
    assert a.epochs is None and a.confidence == 0.5 and a.fix is not None
    assert b.epochs is None and b.fix is None
    # sentences that would print a missing value are not produced
    assert c.ruled_out is None and c.evidence == ()
