"""pipeline.diagnose: the one result type, with fix command lines rendered after ranking."""

from __future__ import annotations

from conftest import FIXTURE_RUNS
from mnv4_postmortem.analyzer.diagnosis import SCHEMA_VERSION, Diagnosis
from mnv4_postmortem.analyzer.engine import evaluate, load_pack
from mnv4_postmortem.analyzer.features.names import is_known_name
from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.pipeline import diagnose, namespace

PACK = load_pack(known_names=is_known_name)


def test_diagnosis_carries_ranked_findings_with_commands_and_the_considered_rules():
    run = load_run(FIXTURE_RUNS / "seed_mnv4")
    diagnosis = diagnose(run, PACK)
    assert isinstance(diagnosis, Diagnosis) and diagnosis.schema_version == SCHEMA_VERSION
    assert diagnosis.summary.path == str(run.run_dir) and diagnosis.summary.epochs["count"] == 12
    # two rules speak for ema-lag since issue 13 (the log-based one and the symptoms-first one): the cause is judged
    assert [f.cause for f in diagnosis.findings][:1] == ["ema-lag"]
    fixes = [f.fix for f in diagnosis.findings if f.fix is not None]
    assert fixes and all(fix.command and fix.command.startswith("python train.py") for fix in fixes)
    assert "--model-ema-warmup" in diagnosis.findings[0].fix.command
    assert "lr-too-high-explosion" in {c.rule_id for c in diagnosis.considered}
    assert diagnosis.segments["eval_top1"][0].label == "collapsed"


def test_the_rules_alone_give_no_command_the_pipeline_adds_it_after_ranking():
    names, meta = namespace(load_run(FIXTURE_RUNS / "seed_mnv4"))
    bare = evaluate(PACK, names).findings
    assert bare and all(f.fix is None or f.fix.command is None for f in bare)
    assert "defaults" in meta and "args" in meta
