"""Issue 17 item 16: impossible config values (EMA decay 1.5, batch -32, negative LR or epochs) are ingest
warnings naming the file and the line; the real args files of every fixture and shared run give none."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnv4_postmortem.analyzer.ingest.args_yaml import parse_args_yaml
from mnv4_postmortem.cli import cli

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "fixtures" / "runs" / "seed_mnv4"

IMPOSSIBLE = {"model_ema_decay": "1.5", "batch_size": "-32", "lr": "-0.1", "epochs": "-3", "drop_path": "1.0",
              "momentum": "abc"}


def edited_args(text: str) -> str:
    for key, value in IMPOSSIBLE.items():
        text, n = re.subn(rf"(?m)^{key}:.*$", f"{key}: {value}", text)
        if n == 0:
            text += f"{key}: {value}\n"
    return text


def test_impossible_values_are_warnings_with_file_and_line(tmp_path):
    (tmp_path / "summary.csv").write_bytes((SEED / "summary.csv").read_bytes())
    text = edited_args((SEED / "args.yaml").read_text())
    (tmp_path / "args.yaml").write_text(text)
    lines = {line.split(":", 1)[0]: n for n, line in enumerate(text.splitlines(), start=1)}
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path), "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    warnings = [w for w in json.loads(result.output)["warnings"] if "impossible" in w["message"]]
    assert {w["message"].split(":", 1)[0] for w in warnings} == set(IMPOSSIBLE)
    for warning in warnings:
        key = warning["message"].split(":", 1)[0]
        assert warning["source"] == f"args.yaml:{lines[key]}"


def real_args_files() -> list[Path]:
    roots = [REPO / "fixtures", REPO.parent / "shared" / "timm-runs", REPO.parent / "shared" / "real-runs"]
    return sorted(p for root in roots if root.exists() for p in root.rglob("args.yaml"))


def test_real_args_files_have_no_impossible_values():
    files = real_args_files()
    if not files:
        pytest.skip("no args files present")
    flagged = {str(p): [i.message for i in parse_args_yaml(p).issues if "impossible" in i.message] for p in files}
    assert not {p: m for p, m in flagged.items() if m}
