"""`--help` and `rules list|show|validate` never load the analysis pipeline (issue 6 §5).

Each command runs in a fresh interpreter, which then reports what it imported: a module imported
at the top of some light module would show up here even when the command itself never uses it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO

HEAVY = ("pandas", "ruptures", "tensorboard", "scipy", "matplotlib",
         "mnv4_postmortem.analyzer.pipeline", "mnv4_postmortem.analyzer.detect", "mnv4_postmortem.analyzer.ingest")

PROBE = """
import json, sys
from mnv4_postmortem.cli import cli
try:
    cli.main(args=sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
sys.stdout.flush()
print("\\n@@MODULES@@" + json.dumps(sorted(sys.modules)), file=sys.stderr)
"""

COMMANDS = {
    "help": ["--help"],
    "report-help": ["report", "--help"],
    "rules-list": ["rules", "list"],
    "rules-show": ["rules", "show", "ema-lag"],
    "rules-validate": ["rules", "validate", str(REPO / "rules")],
}


def imported_by(args: list[str]) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120)
    marker = proc.stderr.rindex("@@MODULES@@")
    return set(json.loads(proc.stderr[marker + len("@@MODULES@@"):]))


@pytest.mark.parametrize("name", COMMANDS)
def test_light_command_imports_no_pipeline(name):
    modules = imported_by(COMMANDS[name])
    assert "click" in modules  # the probe did run the CLI
    loaded = sorted(m for m in modules for heavy in HEAVY if m == heavy or m.startswith(heavy + "."))
    assert not loaded, f"{COMMANDS[name]} imported {loaded[:10]}"


def test_the_probe_sees_a_heavy_command_load_the_pipeline():
    """The check can fail: `report` does import the pipeline and pandas."""
    modules = imported_by(["report", str(REPO / "fixtures" / "runs" / "v1_healthy"), "--format", "json"])
    assert {"pandas", "mnv4_postmortem.analyzer.pipeline"} <= modules
