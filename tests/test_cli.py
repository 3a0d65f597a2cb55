"""The command line as a user meets it: exit codes, stdout/stderr, formats, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURE_RUNS, REAL_RUNS, report_json
from mnv4_postmortem.cli import cli

SEED = FIXTURE_RUNS / "v1_ema_lag"


def invoke(*args: str):
    runner = CliRunner()
    return runner.invoke(cli, list(args), env={"COLUMNS": "200"}, catch_exceptions=False)


def run_main(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The installed entry point in a subprocess: what a user's shell sees (exit code, no traceback)."""
    return subprocess.run([sys.executable, "-m", "mnv4_postmortem", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "COLUMNS": "200"}, timeout=120)


def test_help_on_every_command():
    for args in ([], ["inspect"], ["report"], ["batch"], ["rules"], ["rules", "list"], ["rules", "show"],
                 ["rules", "validate"], ["rules", "test"]):
        result = invoke(*args, "--help")
        assert result.exit_code == 0, args
        assert "Usage:" in result.output


def test_inspect_text_names_sources_config_and_events():
    result = invoke("inspect", str(FIXTURE_RUNS / "v1_resumed"))
    assert result.exit_code == 0
    for needle in ("train.log", "summary.csv", "args.yaml", "layout D", "model_ema_decay", "resume"):
        assert needle in result.output, needle


def test_inspect_json_shape():
    result = invoke("inspect", str(SEED), "--format", "json")
    data = json.loads(result.output)
    assert data["epochs"]["count"] == 12 and data["epochs"]["scheduled"] == 12
    assert {s["kind"] for s in data["sources"]} >= {"console_log", "summary_csv", "args_yaml"}
    assert data["config"]["model_ema_decay"]["value"] == 0.9999
    assert data["config"]["lr (effective)"]["value"] == 0.001


def test_report_json_schema_for_the_seed_case():
    result = invoke("report", str(SEED), "--format", "json")
    assert result.exit_code == 0
    data = report_json(result.output)
    assert data["schema_version"] == "1.2"
    assert {"schema_version", "run", "findings", "segments", "considered"} <= set(data)
    top = data["findings"][0]
    assert set(top) == {"rule_id", "cause", "severity", "confidence", "title", "evidence", "epochs", "fix",
                        "role", "latent", "facts", "visible_from_epoch", "predictable_before_training",
                        "symptoms", "score", "rules"}
    # schema 1.2: the EMA share at the scheduled end is known from the recipe and the first updates
    assert top["predictable_before_training"] is True and 0 <= top["visible_from_epoch"] <= 11
    assert top["role"] == "cause" and top["latent"] is False and "ema_catch_up_epoch" in top["facts"]
    assert top["cause"] == "ema-lag" and top["severity"] == "error"
    assert 0.0 <= top["confidence"] <= 1.0
    evidence = " ".join(e["text"] for e in top["evidence"])
    refs = [r for e in top["evidence"] for r in e["refs"]]
    # structured refs: the citation "summary.csv:2-13" is each line, with the epochs of the cited window
    assert any(r["file"] == "summary.csv" and r.get("line") == 2 and r["epochs"] is not None for r in refs), refs
    assert top["fix"]["safety"] == "recipe-change" and "model-ema-warmup" in top["fix"]["note"]
    assert "0.9999" in evidence and "updates" in evidence and "%" in evidence
    assert top["fix"]["args"]["model_ema_warmup"] is True
    assert "--model-ema-warmup" in top["fix"]["command"]
    assert data["segments"]["eval_top1"][0]["label"] == "collapsed"


def test_report_fail_on_sets_exit_code():
    assert invoke("report", str(SEED), "--fail-on", "error").exit_code == 1
    assert invoke("report", str(SEED), "--fail-on", "critical").exit_code == 0
    assert invoke("report", str(FIXTURE_RUNS / "v1_healthy"), "--fail-on", "warning").exit_code == 0


def test_report_html_is_self_contained(tmp_path):
    out = tmp_path / "report.html"
    result = invoke("report", str(SEED), "--format", "html", "-o", str(out))
    assert result.exit_code == 0
    html = out.read_text()
    assert "<svg" in html and "ema-lag" in html
    # Nothing is fetched when the page opens: no external scripts, styles or images.
    for needle in ('src="http', "src='http", '<link ', '<script src'):
        assert needle not in html


def test_report_never_writes_into_the_run_dir(tmp_path):
    before = sorted(p.name for p in SEED.iterdir())
    invoke("report", str(SEED), "--format", "json")
    assert sorted(p.name for p in SEED.iterdir()) == before


def test_rules_list_show_validate():
    listing = invoke("rules", "list")
    assert "ema-lag" in listing.output and "divergence-nonfinite" in listing.output
    page = invoke("rules", "show", "ema-lag")
    assert page.exit_code == 0 and "What it means" in page.output
    assert invoke("rules", "show", "no-such-rule").exit_code == 2


def test_rules_validate_reports_file_line_and_field(tmp_path):
    bad = tmp_path / "bad-rule.yaml"
    bad.write_text("id: bad-rule\ntitle: t\ncause: ema-lag\nseverity: error\nwhen: series.eval_top1.frist > 1\nevidence: [x]\n")
    result = invoke("rules", "validate", str(bad))
    assert result.exit_code == 1
    assert "bad-rule.yaml:5" in result.output and "when" in result.output and "frist" in result.output


def test_user_rules_are_added_and_a_broken_one_does_not_stop_the_others(tmp_path):
    (tmp_path / "always.yaml").write_text(
        "id: always\ntitle: always fires\ncause: wasted-epochs\nseverity: info\nwhen: series.train_loss.present\n"
        "evidence: ['{{ series.train_loss.n }} epochs']\nexplanation: test\n")
    (tmp_path / "broken.yaml").write_text("id: broken\nwhen: [\n")
    result = invoke("report", str(SEED), "--format", "json", "--rules", str(tmp_path))
    data = report_json(result.output)
    assert "always" in {f["rule_id"] for f in data["findings"]}
    assert data["findings"][0]["cause"] == "ema-lag"
    assert any("broken.yaml" in e for e in data["rule_errors"])


def test_rules_test_command_passes():
    result = invoke("rules", "test")
    assert result.exit_code == 0, result.output
    assert " 0 failed" in result.output


def test_batch_over_fixture_runs():
    result = invoke("batch", str(FIXTURE_RUNS))
    assert result.exit_code == 0
    lines = {line.split()[0].rsplit("/", 1)[-1]: line for line in result.output.splitlines() if line.strip()}
    assert "ema-lag" in lines["v1_ema_lag"] and "divergence" in lines["v1_nan"]


# ------------------------------------------------------------------ bad input: exit 2, no traceback


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02" * 1000, os.urandom(4096)], ids=["empty", "nul", "random"])
def test_unusable_input_exits_2_with_a_message(tmp_path, content):
    (tmp_path / "train.log").write_bytes(content)
    result = run_main("report", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert str(tmp_path) in result.stderr or "train.log" in result.stderr


def test_missing_directory_exits_2(tmp_path):
    result = run_main("inspect", str(tmp_path / "nope"))
    assert result.returncode == 2 and "Traceback" not in result.stderr and "nope" in result.stderr


def test_symlink_loop_and_unreadable_file_are_reported_not_fatal(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("summary.csv", "args.yaml", "train.log"):
        (run / name).write_bytes((SEED / name).read_bytes())
    (run / "loop").symlink_to(run, target_is_directory=True)
    secret = run / "secret.log"
    secret.write_text("x")
    secret.chmod(0)
    result = run_main("inspect", str(run), "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["epochs"]["count"] == 12
    messages = " ".join(w["message"] for w in data["warnings"])
    assert "symlink loop" in messages
    if os.geteuid() != 0:  # root can read anything
        assert "unreadable" in messages


def test_truncated_summary_keeps_good_rows_and_warns(tmp_path):
    lines = (SEED / "summary.csv").read_bytes().splitlines(keepends=True)
    (tmp_path / "summary.csv").write_bytes(b"".join(lines[:6]) + b"5,2.2,4.1,10.0")
    result = run_main("inspect", str(tmp_path), "--format", "json")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["epochs"]["count"] == 5
    assert any("summary.csv:7" in w["source"] for w in data["warnings"])


def test_real_runs_inspect_and_report(real_runs):
    for run_dir in sorted(p for p in real_runs.iterdir() if p.is_dir()):
        result = run_main("report", str(run_dir), "--format", "json")
        assert result.returncode == 0, (run_dir.name, result.stderr[-500:])
        report_json(result.stdout)


@pytest.mark.parametrize("fmt", ["text", "json", "html"])
def test_a_closed_pipe_is_not_an_error(fmt, tmp_path):
    """`report RUN | head -1` must exit 0: 1 would read as "findings at or above --fail-on".
    The pipe's read end is closed before the process starts, so its first write fails for sure."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        # cwd: html is written to ./<run-name>.postmortem.html, never into the repository
        proc = subprocess.run([sys.executable, "-m", "mnv4_postmortem", "report", str(SEED), "--format", fmt],
                              stdout=write_end, stderr=subprocess.PIPE, timeout=120, cwd=tmp_path)
    finally:
        os.close(write_end)
    assert proc.returncode == 0, proc.stderr.decode()[-500:]
    assert b"Traceback" not in proc.stderr
