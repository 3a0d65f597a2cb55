"""The Analyzer session is the one front door: every command that reads runs takes --rules and --tb-alias
through it, and a run's page looks the same from `report` and from `batch` (issue 16's visible defects)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURE_RUNS, REPO

SEED = FIXTURE_RUNS / "seed_mnv4"
# A user's own rule (for --rules): a hypothesis about the LR with a fix computed from the run's config.
USER_RULE = """\
id: team-lr-ten-times
title: Our team's hunch - the LR should be ten times higher
cause: lr-too-low
severity: info
when: config.lr < 0
evidence:
  - "lr {{ config.lr }}"
fix:
  args: {lr: "=config.lr * 10"}
"""


@pytest.fixture
def user_rule(tmp_path) -> Path:
    path = tmp_path / "rules" / "team-lr-ten-times.yaml"
    path.parent.mkdir()
    path.write_text(USER_RULE, encoding="utf-8")
    return path
ALIASES = ("objective/training=train_loss", "quality/val_acc1=eval_top1")


def _cli(*args, **kwargs):
    from mnv4_postmortem.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def _tensorboard_run_with_own_tags(folder: Path) -> Path:
    """A TensorBoard-only run whose tags no default alias knows (as a custom training loop writes them)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    folder.mkdir(parents=True)
    writer = EventFileWriter(str(folder))
    for epoch in range(6):
        for tag, value in (("objective/training", 2.3 - 0.3 * epoch), ("quality/val_acc1", 10.0 + 8 * epoch)):
            summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
            writer.add_event(event_pb2.Event(wall_time=1_700_000_000.0 + epoch, step=epoch, summary=summary))
    writer.close()
    return folder


def _verification_doc() -> dict:
    return {"schema": "mnv4-postmortem/verification", "schema_version": "1.0", "complete": True, "seeds": [0, 1],
            "findings": [{"finding": "ema-lag", "verdict": "confirmed", "reason": "fires in control only",
                          "metric": "eval_top1", "arms": [], "effect": None}]}


# ------------------------------------------------------------------------------------------ the session


def test_public_api_diagnoses_a_run_like_the_report_command():
    from mnv4_postmortem import Analyzer, diagnose, load_run

    by_api = diagnose(load_run(SEED))
    by_session = Analyzer().analyze(SEED)
    assert by_api.findings and [f.rule_id for f in by_api.findings] == [f.rule_id for f in by_session.findings]
    report = json.loads(_cli("report", SEED, "--format", "json").output)
    assert [f["rule_id"] for f in report["findings"]] == [f.rule_id for f in by_api.findings]


def test_the_session_pickles_as_its_options_and_loads_its_pack_once(user_rule):
    from mnv4_postmortem.analyzer.session import Analyzer, AnalyzerOptions

    analyzer = Analyzer(AnalyzerOptions.of([user_rule], tb_aliases={"a/b": "train_loss"}))
    assert analyzer.pack is analyzer.pack  # parsed once per session
    assert "team-lr-ten-times" in analyzer.pack.ids and not analyzer.pack.errors
    copy = pickle.loads(pickle.dumps(analyzer))
    assert copy.options == analyzer.options and copy.tb_aliases == {"a/b": "train_loss"}


def test_fix_as_if_fired_comes_from_the_rule_and_unknown_names_list_the_catalog():
    from mnv4_postmortem.analyzer.session import Analyzer, UnknownHypothesis

    analyzer = Analyzer()
    run = analyzer.load(FIXTURE_RUNS / "v1_healthy")
    hypothesis = analyzer.fix_as_if_fired(run, "over-regularization")
    assert hypothesis.cause == "over-regularization" and hypothesis.patch and hypothesis.patch.get("mixup") == 0
    with pytest.raises(UnknownHypothesis) as raised:
        analyzer.fix_as_if_fired(run, "not-a-cause")
    assert "over-regularization" in raised.value.causes


# ------------------------------------------------------------------------------------------ --tb-alias


def test_batch_reads_a_tensorboard_run_that_needs_tb_alias(tmp_path):
    run = _tensorboard_run_with_own_tags(tmp_path / "runs" / "custom_tb")
    without = _cli("batch", run.parent, "--format", "json", "-j", "1")
    unaliased = json.loads(without.stdout.splitlines()[0])
    # nothing usable without the alias: since issue 19 that is a "nothing to judge" row, not an error row
    assert unaliased["outcome"]["kind"] == "nothing-to-judge" and unaliased["run"]["epochs"]["count"] == 0, without.output
    args = [a for pair in ALIASES for a in ("--tb-alias", pair)]
    result = _cli("batch", run.parent, "--format", "json", "-j", "1", *args)
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout.splitlines()[0])
    assert "error" not in row and row["run"]["epochs"]["count"] == 6
    assert {"train_loss", "eval_top1"} <= set(row["segments"])


def test_reproduce_passes_rules_and_tb_alias_to_its_session(tmp_path, monkeypatch, user_rule):
    pytest.importorskip("torch")
    import mnv4_postmortem.runner.reproduce as reproduce_module

    seen = {}

    def capture(run_dir, opts, console):
        seen["options"] = opts.session().options
        seen["run"] = opts.session().load(run_dir)
        return 0

    monkeypatch.setattr(reproduce_module, "reproduce", capture)
    run = _tensorboard_run_with_own_tags(tmp_path / "custom_tb")
    result = _cli("reproduce", run, "--proxy", "--dry-run", "--rules", user_rule,
                  *[a for pair in ALIASES for a in ("--tb-alias", pair)])
    assert result.exit_code == 0, result.output
    assert seen["options"].rule_paths == (str(user_rule),)
    assert dict(seen["options"].tb_aliases) == dict(p.split("=") for p in ALIASES)
    assert list(seen["run"].epochs.columns) and "train_loss" in seen["run"].epochs.columns


# ------------------------------------------------------------------------------------------ --rules


def test_reproduce_takes_rules_a_user_rule_is_a_hypothesis_it_can_test(tmp_path, user_rule):
    pytest.importorskip("torch")
    result = _cli("reproduce", SEED, "--proxy", "--dry-run", "--out", tmp_path / "out",
                  "--rules", user_rule, "--finding", "team-lr-ten-times")
    assert result.exit_code == 0, result.output
    assert "no such cause" not in result.output and "team-lr-ten-times" in result.output
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------ attachments


def test_a_batch_page_carries_the_verification_report_shows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = tmp_path / "mnv4-postmortem-repro" / SEED.name
    default.mkdir(parents=True)
    (default / "verification.json").write_text(json.dumps(_verification_doc()), encoding="utf-8")
    report = _cli("report", SEED, "--format", "html", "-o", tmp_path / "seed.html")
    assert report.exit_code == 0, report.output
    assert '<section id="verification">' in (tmp_path / "seed.html").read_text(encoding="utf-8")
    result = _cli("batch", SEED, "--out", tmp_path / "batch", "-j", "1")
    assert result.exit_code == 0, result.output
    pages = list((tmp_path / "batch" / "runs").glob("*.html"))
    assert len(pages) == 1
    page = pages[0].read_text(encoding="utf-8")
    assert '<section id="verification">' in page and "confirmed" in page


def test_a_broken_default_verification_is_a_warning_and_a_named_one_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = tmp_path / "mnv4-postmortem-repro" / SEED.name
    default.mkdir(parents=True)
    (default / "verification.json").write_text("{not json", encoding="utf-8")
    result = _cli("report", SEED, "--format", "json")
    assert result.exit_code == 0 and "no Verification section" in result.output
    named = _cli("report", SEED, "--verification", default)
    assert named.exit_code == 2 and "not valid JSON" in named.output


# ------------------------------------------------------------------------------------------ no [runner] extra

# A venv without the [runner] extra, simulated: torch and timm (and what imports them) cannot be imported.
_WITHOUT_TORCH = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'timm', 'torchvision'):
            raise ModuleNotFoundError(name)
        return None
sys.meta_path.insert(0, _Block())
sys.argv = ['mnv4-postmortem', *sys.argv[1:]]
from mnv4_postmortem.cli import main
main()
"""


def _without_torch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _WITHOUT_TORCH, *args], capture_output=True, text=True,
                          env={**os.environ, "MNV4_DEBUG": ""}, timeout=300)


def test_dry_run_plans_without_torch(tmp_path):
    proc = _without_torch("reproduce", str(SEED), "--proxy", "--dry-run", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "--dry-run" in proc.stderr and "kept" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------ typed recipe


def test_the_config_table_lists_train_py_settings_not_the_recipe_bookkeeping():
    """The HTML config table showed updates_by_epoch {0: 31, ...}, epochs_scheduled_source and
    updates_per_epoch_source as if they were train.py arguments; they live in the typed Recipe now."""
    from mnv4_postmortem.analyzer.session import Analyzer

    diagnosis = Analyzer().analyze(SEED)
    keys = {row.key for row in diagnosis.report_facts.config_rows}
    assert "lr" in keys and "model_ema_decay" in keys
    bookkeeping = {"updates_by_epoch", "epochs_scheduled_source", "updates_per_epoch_source", "num_classes_confidence"}
    assert not keys & bookkeeping
    recipe = diagnosis.run.recipe
    assert recipe.updates_per_epoch.value == 31 and recipe.updates_per_epoch.kind == "log"
    assert set(recipe.updates_by_epoch.values()) == {31}
    assert recipe.epochs_scheduled.value == 12 and recipe.epochs_scheduled.kind in ("log", "args")
    assert recipe.lr.kind == "args" and recipe.lr.value == 0.001
    from mnv4_postmortem.analyzer.render import renderer

    page = renderer("report", "html")(diagnosis)
    assert "updates_by_epoch" not in page and "epochs_scheduled_source" not in page


# ------------------------------------------------------------------------------------------ cause metadata


def test_what_a_fix_should_move_and_what_a_rung_toggles_come_from_causes_yaml(tmp_path):
    from mnv4_postmortem.analyzer.engine.schema import CAUSES
    from mnv4_postmortem.analyzer.session import Analyzer, AnalyzerOptions

    shipped = Analyzer()
    assert shipped.target_metric("ema-lag") == "eval_top1"            # what timm reports (the EMA's eval)
    assert shipped.target_metric("lr-too-low") == "eval_top1_model"   # the raw model's own top-1
    assert shipped.causes_toggled_by("ema") == ("ema-lag",)
    # a team's own causes.yaml changes both, with no code change
    (tmp_path / "causes.yaml").write_text(
        f"- id: lr-too-low\n  description: {CAUSES['lr-too-low']}\n  metric: eval_top1\n  ablation: lr\n", encoding="utf-8")
    custom = Analyzer(AnalyzerOptions.of([tmp_path]))
    assert not custom.pack.errors
    assert custom.target_metric("lr-too-low") == "eval_top1" and "lr-too-low" in custom.causes_toggled_by("lr")
    (tmp_path / "causes.yaml").write_text(
        f"- id: lr-too-low\n  description: {CAUSES['lr-too-low']}\n  metric: top1\n", encoding="utf-8")
    broken = Analyzer(AnalyzerOptions.of([tmp_path]))
    assert any("metric must be one of" in str(e) for e in broken.pack.errors)
