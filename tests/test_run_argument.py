"""Issue 17 item 11: only a bare ``-`` reads stdin; ``./-`` (or any other spelling) is the folder named ``-``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from mnv4_postmortem.cli import cli

SEED = Path(__file__).resolve().parents[1] / "fixtures" / "runs" / "seed_mnv4"


def invoke(*args: str, stdin: str = ""):
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def test_dot_slash_dash_reads_the_folder_named_dash(tmp_path, monkeypatch):
    shutil.copytree(SEED, tmp_path / "-")
    monkeypatch.chdir(tmp_path)
    for spelling in ("./-", str(tmp_path / "-"), "./-/"):
        result = invoke("inspect", spelling, "--format", "json")
        assert result.exit_code == 0, (spelling, result.output)
        view = json.loads(result.output)
        assert {s["kind"] for s in view["sources"]} >= {"summary_csv", "args_yaml"}, spelling
    report = invoke("report", "./-", "--format", "json")
    assert report.exit_code == 0 and json.loads(report.output)["run"]["epochs"]["count"] > 0


def test_a_bare_dash_still_reads_stdin(tmp_path, monkeypatch):
    shutil.copytree(SEED, tmp_path / "-")
    monkeypatch.chdir(tmp_path)
    excerpt = (SEED / "summary.csv").read_text()
    result = invoke("inspect", "-", "--format", "json", stdin=excerpt)
    assert result.exit_code == 0, result.output
    sources = json.loads(result.output)["sources"]
    assert all("stdin" in s["path"] or s["path"] == "-" or s["path"].startswith("<") for s in sources), sources
