"""Issue 6 defects 2 and 3, through public entry points only (so the same tests ran on the code before)."""

from __future__ import annotations

import shutil
from pathlib import Path

from mnv4_postmortem.analyzer.pipeline import namespace as namespace_for
from mnv4_postmortem.analyzer.features.derived import derive
from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.timm.version import TimmVersion

V1_HEALTHY = Path(__file__).resolve().parents[1] / "fixtures" / "runs" / "v1_healthy"


def _without_log(tmp_path: Path) -> Path:
    """fixtures/runs/v1_healthy (timm 1.0.28) with only its summary.csv and args.yaml."""
    run = tmp_path / "v1_healthy"
    run.mkdir()
    for name in ("summary.csv", "args.yaml"):
        shutil.copy(V1_HEALTHY / name, run / name)
    return run


def test_defect2_fix_commands_use_the_era_of_the_config(tmp_path: Path) -> None:
    run = load_run(_without_log(tmp_path))
    _names, meta = namespace_for(run)
    defaults = meta["defaults"]
    # The config was filled from one era; the command defaults must be that era's for every defaulted key ...
    for key in run.config.defaulted:
        assert defaults.get(key) == run.config.values[key], key
    # ... and must not bring keys of another era: amp_impl is in the 0.8.2dev0-1.0.13 columns only,
    # and this run's args.yaml (timm 1.0.28) has no such key.
    assert "amp_impl" not in run.config.values
    assert "amp_impl" not in defaults


def test_defect3_schedule_source_is_args_yaml_without_the_log(tmp_path: Path) -> None:
    derived = derive(load_run(_without_log(tmp_path)))
    assert derived.epochs_scheduled is not None
    assert derived.epochs_scheduled_source == "args.yaml"
    assert derive(load_run(V1_HEALTHY)).epochs_scheduled_source == "log"


def test_defect2_fix_command_repeats_no_default_of_the_runs_own_era(tmp_path: Path) -> None:
    """v1_lr_high (timm 1.0.28) without its log: the lr fix must not print 1.0.23-era defaults as if set."""
    from mnv4_postmortem.analyzer.engine.loader import load_pack
    from mnv4_postmortem.analyzer.pipeline import diagnose as analyze

    run_dir = tmp_path / "v1_lr_high"
    run_dir.mkdir()
    for name in ("summary.csv", "args.yaml"):
        shutil.copy(V1_HEALTHY.parent / "v1_lr_high" / name, run_dir / name)
    report = analyze(load_run(run_dir), load_pack())
    commands = [f.fix.command for f in report.findings if f.fix is not None and f.fix.command]
    assert commands, "the lr-too-high finding should carry a fix command"
    for command in commands:
        assert "--val-interval" not in command and "--grad-accum-steps" not in command, command


def test_defect2_a_run_without_its_log_has_one_timm_era(tmp_path: Path) -> None:
    """Config defaults and fix commands come from the same column of the defaults table."""
    run = load_run(_without_log(tmp_path))
    assert run.config.timm_version is not None and run.timm_version == run.config.timm_version
    assert run.config.timm_version.era == TimmVersion.parse(str(run.timm_version)).era == "1.0.23"
