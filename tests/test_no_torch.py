"""The analyzer core never imports torch or timm, even where both are installed (every timm user's machine).

Importing ``timm.models`` costs seconds and hundreds of MB (torch, torchvision); the analyzer reads timm's
pretrained configs from its shipped table instead. A static check of module-level imports
(test_architecture.py) cannot see a function-local import, so this runs the commands and looks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "fixtures" / "runs" / "seed_mnv4"
PRETRAINED = REPO / "fixtures" / "runs" / "r18_grat_ft32_v1"  # fine-tuned far below its pretrained size: the rule fires

PROBE = """
import json, sys
from click.testing import CliRunner
from mnv4_postmortem.cli import cli
codes = [CliRunner().invoke(cli, args).exit_code for args in json.loads(sys.argv[1])]
print(json.dumps({"codes": codes, "loaded": sorted(m for m in ("torch", "timm", "torchvision") if m in sys.modules)}))
"""


def test_report_and_inspect_leave_torch_and_timm_unimported(tmp_path: Path) -> None:
    pytest.importorskip("timm")  # the point is a machine where `import timm` would succeed
    commands = [["report", str(SEED)], ["report", "--format", "json", str(PRETRAINED)],
                ["report", "--format", "html", "-o", str(tmp_path / "r.html"), str(SEED)], ["inspect", str(SEED)]]
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(commands)], capture_output=True, text=True,
                         check=True, cwd=REPO)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert all(code in (0, 1) for code in result["codes"]), (result, out.stderr[-2000:])
    assert result["loaded"] == [], f"imported {result['loaded']}"
