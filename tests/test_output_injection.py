"""Issue 17 items 5 and 6: hostile args.yaml values and file names never reach a terminal as live control
sequences (text, JSON, Markdown, HTML, batch rows, inspect), and CSV cells never start a formula.

The runs are the bundled seed run (real timm output) copied to a temp folder; only the hostile strings
(escape sequences an attacker would use: OSC 8 hyperlink with hidden target, window title, clear screen,
SGR 8 conceal, 8-bit CSI, a bidi override; a spreadsheet formula) are hand-written.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from conftest import FIXTURE_RUNS
from mnv4_postmortem.analyzer.render.csv_cells import csv_cell
from mnv4_postmortem.analyzer.render.terminal import one_line, terminal_safe
from mnv4_postmortem.cli import cli

OSC8_LINK = "\x1b]8;;http://evil.example/\x1b\\seed\x1b]8;;\x1b\\"
TITLE = "\x1b]0;pwned\x07"
CLEAR_CONCEAL = "\x1b[2J\x1b[8mhidden\x1b[0m"
BIDI = "\u202eexe.txt"
CSI8 = "\x9b31m"
HOSTILE_EXPERIMENT = OSC8_LINK + TITLE + "<script>alert(1)</script>"
HOSTILE_OUTPUT = "/tmp/" + CLEAR_CONCEAL + BIDI + CSI8
HOSTILE_LOG = "train" + TITLE + ".log"
FORMULA = "@SUM(1+1)*cmd|' /C calc'!A0"
# what must never be in terminal-bound output: C0 but tab/newline, DEL, C1, bidi controls
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _hostile_run(root: Path, experiment: str = HOSTILE_EXPERIMENT, name: str = "run") -> Path:
    run = root / name
    shutil.copytree(FIXTURE_RUNS / "seed_mnv4", run)
    args = yaml.safe_load((run / "args.yaml").read_text())
    args.update(experiment=experiment, output=HOSTILE_OUTPUT, weight_decay=-2e-05)
    (run / "args.yaml").write_text(yaml.safe_dump(args, allow_unicode=True))
    (run / "train.log").rename(run / HOSTILE_LOG)
    return run


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    return _hostile_run(tmp_path_factory.mktemp("hostile"))


def _report(run: Path, *extra: str):
    result = CliRunner().invoke(cli, ["report", str(run), *extra])
    assert result.exit_code == 0, result.output
    return result


def test_the_sanitizer_escapes_controls_and_bidi_and_keeps_layout():
    assert terminal_safe("a\x1b[2Jb\tc\nd\u202ee\x9bf\x07") == "a\\u001b[2Jb\tc\nd\\u202ee\\u009bf\\u0007"
    assert one_line("two\nlines\there") == "two\\u000alines\\u0009here"
    assert terminal_safe("plain ascii, ü, 日本") == "plain ascii, ü, 日本"


def test_text_report_shows_the_fix_command_escaped(hostile):
    out = _report(hostile).stdout
    assert not RAW_CONTROL.search(out)
    # the command is there, with the hostile value visible as escapes (what is copied is what is seen)
    command = next(line for line in out.splitlines() if "python train.py" in line)
    assert "\\u001b]8;;http://evil.example/" in command and "\\u001b]0;pwned" in command
    assert "train\\u001b]0;pwned\\u0007.log" in out  # the cited file name


def test_json_escapes_and_keeps_the_value(hostile):
    out = _report(hostile, "--format", "json").stdout
    assert not RAW_CONTROL.search(out)
    doc = json.loads(out)
    top = doc["findings"][0]["fix"]["command"]
    # lossless: the JSON reader gets the original characters back
    assert OSC8_LINK in top and "\x9b31m" in top and "\u202e" in top


def test_markdown_has_no_raw_escape_bytes(hostile, tmp_path):
    out = _report(hostile, "--format", "md").stdout
    assert not RAW_CONTROL.search(out) and "\\u001b" in out
    _report(hostile, "--format", "md", "-o", str(tmp_path / "r.md"))
    assert not RAW_CONTROL.search((tmp_path / "r.md").read_text(encoding="utf-8"))


def test_text_written_with_o_is_escaped_too(hostile, tmp_path):
    _report(hostile, "-o", str(tmp_path / "r.txt"))
    text = (tmp_path / "r.txt").read_text(encoding="utf-8")
    assert not RAW_CONTROL.search(text) and "\\u001b]0;pwned" in text


def test_html_shows_the_hostile_strings_as_text(hostile, tmp_path):
    _report(hostile, "--format", "html", "-o", str(tmp_path / "r.html"))
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "http://evil.example/" not in re.findall(r'href="([^"]*)"', page)


def test_inspect_escapes_file_names(hostile):
    result = CliRunner().invoke(cli, ["inspect", str(hostile)])
    assert result.exit_code == 0, result.output
    assert not RAW_CONTROL.search(result.stdout)
    assert "\\u001b]0;pwned\\u0007" in result.stdout


def test_batch_rows_csv_and_summary(tmp_path):
    root = tmp_path / "runs"
    _hostile_run(root, experiment=FORMULA, name="formula")
    _hostile_run(root, name="two\nlines" + TITLE)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["batch", str(root), "--out", str(out), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    # text rows: one line per run, a newline in a folder name included
    assert len(result.stdout.splitlines()) == 2 and not RAW_CONTROL.search(result.stdout)
    assert "two\\u000alines" in result.stdout
    with open(out / "runs.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_name = {r["name"]: r for r in rows}
    assert by_name["runs/formula"]["experiment"] == "'" + FORMULA
    assert by_name["runs/formula"]["config.weight_decay"] == "-2e-05"  # a real negative number stays a number
    raw_csv = (out / "runs.csv").read_text(encoding="utf-8")
    assert not RAW_CONTROL.search(raw_csv.replace("\r\n", "\n"))
    assert not RAW_CONTROL.search((out / "summary.md").read_text(encoding="utf-8"))
    jsonl = (out / "runs.jsonl").read_text(encoding="utf-8")
    assert not RAW_CONTROL.search(jsonl)
    assert {json.loads(line)["experiment"] for line in jsonl.splitlines()} == {FORMULA, HOSTILE_EXPERIMENT}


@pytest.mark.parametrize("value,expected", [
    ("=1+1", "'=1+1"), ("+cmd", "'+cmd"), ("-1+1", "'-1+1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("\r=1", "'\\u000d=1"), ("-0.5", "-0.5"), ("+3", "+3"), ("-1e-05", "-1e-05"), ("-inf", "-inf"),
    (-0.5, -0.5), (3, 3), (True, True), (None, None), ("model", "model"), ("a=b", "a=b"),
])
def test_csv_cells_follow_owasp(value, expected):
    assert csv_cell(value) == expected
