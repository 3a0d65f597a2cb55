"""``mnv4-postmortem reproduce RUN_DIR``: verify a diagnosis by a controlled re-run (needs the [runner] extra).

Self-contained: the root CLI only registers it. Everything heavy (torch, timm, the analyzer) loads
inside the command, so ``--help`` stays light and a missing extra gets a message, not a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from mnv4_postmortem.cli import exit_codes
from mnv4_postmortem.cli.app import rules_option, tb_alias_options

INSTALL_HINT = ('the reproduce command needs the [runner] extra (torch, timm): pip install "mnv4-postmortem[runner]" '
                '(from a checkout: pip install -e ".[runner]")')


@click.command("reproduce")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--finding", "findings", multiple=True, metavar="ID",
              help="Finding to verify: a rule id or any catalog cause, fired or not (repeatable). Default: the top finding.")
@click.option("--all", "all_findings", is_flag=True, help="Verify every finding at warning or above.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="ImageFolder with train/ and validation/ (or val/).")
@click.option("--proxy", is_flag=True, help="Use the procedural proxy dataset (no downloads) at the run's size and class count.")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs per arm (default: the run's, at most 8).")
@click.option("--max-samples", type=click.IntRange(min=8), help="Training samples per arm (default 128).")
@click.option("--val-samples", type=click.IntRange(min=8), help="Validation samples (default 160).")
@click.option("--img-size", type=click.IntRange(min=8), help="Replace the run's input size (default: kept).")
@click.option("--seeds", type=click.IntRange(min=1), help="Seeds per arm (default 2; 1 per rung with --ablate).")
@click.option("--device", type=click.Choice(("auto", "cpu", "cuda", "mps")), default="auto", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default ./mnv4-postmortem-repro/<run-name>/; never inside RUN_DIR).")
@click.option("--train-script", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Run this train.py (yours) for each arm instead of the built-in trainer.")
@click.option("--init-checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Start from these weights when the run's pretrained weights cannot be loaded here.")
@click.option("--launcher", type=click.Choice(("local", "submitit")), default="local", show_default=True)
@click.option("--slurm-partition", help="submitit: SLURM partition.")
@click.option("--gpus-per-job", type=click.IntRange(min=0), default=0, show_default=True, help="submitit: GPUs per job.")
@click.option("--timeout-min", type=click.IntRange(min=1), default=60, show_default=True, help="submitit: job time limit.")
@click.option("--dry-run", is_flag=True, help="Print the spec and the arms, train nothing.")
@click.option("--ablate", is_flag=True,
              help="Ablation ladder instead of control vs fix: every advanced component off (rung 0), then added back one at a time.")
@click.option("--one-at-a-time", is_flag=True, help="--ablate: add each component alone to the baseline, not cumulatively.")
@click.option("--max-rungs", type=click.IntRange(min=1), help="--ablate: at most this many rungs (the most suspicious components kept).")
@click.option("--show-batch", is_flag=True,
              help="Write batch_grid.png: one training batch at the run's input size beside the same images at the pretrained size.")
@rules_option
@tb_alias_options
def reproduce_command(run_dir: Path, findings: tuple[str, ...], all_findings: bool, data_dir: Path | None, proxy: bool,
                      epochs: int | None, max_samples: int | None, val_samples: int | None, img_size: int | None,
                      seeds: int | None, device: str, out: Path | None, train_script: Path | None,
                      init_checkpoint: Path | None, launcher: str, slurm_partition: str | None, gpus_per_job: int,
                      timeout_min: int, dry_run: bool, ablate: bool = False, one_at_a_time: bool = False,
                      max_rungs: int | None = None, show_batch: bool = False, rule_paths: tuple[Path, ...] = (),
                      tb_alias: tuple[str, ...] = (), tb_aliases_file: Path | None = None) -> None:
    """Re-run RUN_DIR's recipe at small scale, as run and with each finding's fix, and say whether the
    diagnosis holds (confirmed / refuted / inconclusive), with the numbers.

    \b
    Exit codes: 0 done, 2 usage error / unusable run / [runner] extra missing, 130 interrupted
    (finished arms kept, partial verification.json written).
    """
    from mnv4_postmortem.cli.app import fail, session

    try:
        from mnv4_postmortem.runner import missing_requirements
    except ImportError:  # the runner package itself is not installed
        fail(INSTALL_HINT)
    missing = missing_requirements()
    if missing and (not dry_run or show_batch):  # a dry run only plans, and planning needs no torch
        fail(f"{INSTALL_HINT}; missing here: {', '.join(missing)}")
    from mnv4_postmortem.runner.reproduce import Options, ReproduceError, reproduce

    seeds = seeds or (1 if ablate else 2)
    opts = Options(findings=findings, all_findings=all_findings, data_dir=data_dir, proxy=proxy, epochs=epochs,
                   max_samples=max_samples, val_samples=val_samples, img_size=img_size, seeds=seeds, device=device,
                   out=out, train_script=train_script, launcher=launcher, dry_run=dry_run,
                   init_checkpoint=init_checkpoint, slurm_partition=slurm_partition, gpus_per_job=gpus_per_job,
                   timeout_min=timeout_min,
                   analyzer=session(rule_paths, tb_alias=tb_alias, tb_aliases_file=tb_aliases_file))
    if (one_at_a_time or max_rungs) and not ablate:
        fail("--one-at-a-time and --max-rungs go with --ablate")
    try:
        console = _console()
        if show_batch:
            from mnv4_postmortem.runner.show_batch import show_batch_for_run

            grid = show_batch_for_run(run_dir, opts)
            console.print(f"batch grid: {grid.path} ({grid.size[0]}x{grid.size[1]} px; {len(grid.labels)} images at "
                          f"{grid.run_px}px beside {grid.pretrained_px}px)")
        if ablate:
            from mnv4_postmortem.runner.ablation_run import run_ablation

            code = run_ablation(run_dir, opts, console, one_at_a_time=one_at_a_time, max_rungs=max_rungs)
        elif show_batch and dry_run:
            code = 0
        else:
            code = reproduce(run_dir, opts, console)
    except ReproduceError as exc:
        fail(str(exc))
    if code:
        raise SystemExit(code)
    raise SystemExit(exit_codes.OK)


def _console():
    """Status goes to stderr; wide enough for the spec table when stderr is a file or a pipe."""
    import sys

    from rich.console import Console

    return Console(file=sys.stderr, highlight=False, width=None if sys.stderr.isatty() else 160)
