"""The reproduce command's edges: no [runner] extra, --dry-run, bad --finding, bad --out (no training)."""

from __future__ import annotations

import os
import subprocess
import sys

from click.testing import CliRunner

from conftest import REPO

SEED = REPO / "fixtures" / "runs" / "seed_mnv4"

_BLOCK_TORCH = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'timm'):
            raise ModuleNotFoundError(name)
        return None
sys.meta_path.insert(0, _Block())
sys.argv = ['mnv4-postmortem', 'reproduce', sys.argv[1], '--proxy']
from mnv4_postmortem.cli import main
main()
"""


def test_without_the_runner_extra_it_says_how_to_install_and_exits_2():
    proc = subprocess.run([sys.executable, "-c", _BLOCK_TORCH, str(SEED)], capture_output=True, text=True,
                          env={**os.environ, "MNV4_DEBUG": ""}, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "[runner]" in proc.stderr and "pip install" in proc.stderr and "Traceback" not in proc.stderr


def _invoke(*args):
    from mnv4_postmortem.cli import cli

    return CliRunner().invoke(cli, ["reproduce", *map(str, args)])


def test_dry_run_prints_the_spec_and_trains_nothing(tmp_path):
    out = tmp_path / "out"
    result = _invoke(SEED, "--proxy", "--dry-run", "--out", out)
    assert result.exit_code == 0, result.output
    text = result.output
    # 31 updates/epoch x 12 epochs -> 8 x 8: decay' = 0.9998^((372-1)/(64-1)) (ModelEmaV3 copies on update 1)
    scaled_decay = f"{0.9998 ** (371 / 63):.6g}"
    for word in ("kept", "scaled", "replaced", scaled_decay, "0.9998", "random init", "share one trajectory",
                 "372", "64"):
        assert word in text, word
    assert not out.exists()


def test_unknown_finding_names_the_catalog():
    result = _invoke(SEED, "--proxy", "--dry-run", "--finding", "not-a-cause")
    assert result.exit_code == 2
    assert "no such cause" in result.output and "over-regularization" in result.output


def test_a_hypothesis_that_did_not_fire_gets_its_rules_fix(tmp_path):
    result = _invoke(REPO / "fixtures" / "runs" / "v1_healthy", "--proxy", "--dry-run", "--finding", "over-regularization")
    assert result.exit_code == 0, result.output
    assert "did not fire on the run: a hypothesis" in result.output and "mixup=0" in result.output


def test_proxy_or_data_dir_is_required():
    result = _invoke(SEED, "--dry-run")
    assert result.exit_code == 2 and "--proxy or --data-dir" in result.output


def test_all_skips_what_cannot_be_tested_without_the_original_weights():
    result = _invoke(SEED, "--proxy", "--all", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "input-size-mismatch: skipped" in result.output and "--init-checkpoint" in result.output
    assert "ema-lag (fired on the run)" in result.output
