"""Rule ids are unique in a pack: a user rule with a shipped id replaces the shipped one (and says so);
two user rules with one id are an error naming both files (issue 6, defect 1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURE_RUNS, REPO, report_json

SEED = FIXTURE_RUNS / "seed_mnv4"
SHIPPED = REPO / "rules" / "ema" / "ema-lag.yaml"
EDITED_TITLE = "EMA lag (my team's wording)"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mnv4_postmortem", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, timeout=120)


def edited_copy(folder: Path) -> Path:
    """The shipped ema-lag rule with only its title changed, as a user would override it."""
    folder.mkdir(parents=True, exist_ok=True)
    text = SHIPPED.read_text(encoding="utf-8")
    lines = [f"title: {EDITED_TITLE}" if line.startswith("title:") else line for line in text.splitlines()]
    assert lines != text.splitlines(), "the shipped rule has a top-level title"
    path = folder / "ema-lag.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_user_rule_with_a_shipped_id_replaces_it_in_rules_list(tmp_path):
    override = edited_copy(tmp_path / "mine")
    result = run_cli("rules", "list", "--rules", str(tmp_path / "mine"))
    assert result.returncode == 0, result.stderr
    listed = [line for line in result.stdout.splitlines() if line.split()[0] == "ema-lag"]
    assert len(listed) == 1, listed
    assert listed[0].endswith(EDITED_TITLE)
    assert "replaces the shipped rule" in result.stderr and str(override) in result.stderr


def test_a_user_rule_with_a_shipped_id_fires_once_with_its_own_text(tmp_path):
    edited_copy(tmp_path / "mine")
    result = run_cli("report", str(SEED), "--format", "json", "--rules", str(tmp_path / "mine"))
    assert result.returncode == 0, result.stderr
    fired = [f for f in report_json(result.stdout)["findings"] if f["rule_id"] == "ema-lag"]
    assert [f["title"] for f in fired] == [EDITED_TITLE]
    assert "replaces the shipped rule" in result.stderr


def test_two_user_rules_with_one_id_are_an_error_naming_both_files(tmp_path):
    first = edited_copy(tmp_path / "a")
    second = edited_copy(tmp_path / "b")
    result = run_cli("rules", "validate", str(tmp_path / "a"), str(tmp_path / "b"))
    assert result.returncode == 1
    assert "duplicate id 'ema-lag'" in result.stdout
    assert str(first) in result.stdout and str(second) in result.stdout
