"""``mnv4-postmortem batch ROOT...``: diagnose many runs, one line (or JSON object) per run."""

from __future__ import annotations

from pathlib import Path

import click

from mnv4_postmortem.analyzer.render import formats
from mnv4_postmortem.cli import exit_codes
from mnv4_postmortem.cli.app import SEVERITIES, emit, load_rule_pack, stderr_console

RUN_MARKERS = ("summary.csv", "args.yaml", "*.log", "config.yaml")


@click.command("batch")
@click.argument("roots", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(formats("batch")), default="text", show_default=True,
              help="text: a table; json: one JSON report per line (JSON Lines).")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True, path_type=Path))
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None, help="Exit 1 when any run has a finding at or above this severity.")
def batch_command(roots: tuple[Path, ...], fmt: str, rule_paths: tuple[Path, ...], fail_on: str | None) -> None:
    """Diagnose every run found under ROOTS (a folder holding summary.csv, args.yaml, a timm log or
    event files). Unreadable runs are reported and skipped; progress goes to stderr."""
    from rich.progress import Progress

    from mnv4_postmortem.analyzer.findings import Severity
    from mnv4_postmortem.analyzer.ingest import load_run
    from mnv4_postmortem.analyzer.model import IngestError
    from mnv4_postmortem.analyzer.pipeline import diagnose
    from mnv4_postmortem.analyzer.render import renderer_module

    rows = renderer_module("batch", fmt)
    run_dirs = sorted({d for root in roots for d in find_run_dirs(root)})
    pack = load_rule_pack(rule_paths)
    threshold = Severity.parse(fail_on) if fail_on else None
    failing = unusable = 0
    with Progress(console=stderr_console(), transient=True) as progress:
        task = progress.add_task("analysing", total=len(run_dirs))
        for run_dir in run_dirs:
            progress.advance(task)
            try:
                diagnosis = diagnose(load_run(run_dir), pack)
            except IngestError as exc:
                unusable += 1
                emit(rows.render_error(str(run_dir), str(exc)))
                continue
            if threshold is not None and any(f.severity >= threshold for f in diagnosis.findings):
                failing += 1
            emit(rows.render(diagnosis, verbose=False))
    click.echo(f"{len(run_dirs)} run(s), {unusable} unusable, {failing} at or above --fail-on", err=True)
    if failing:
        raise SystemExit(exit_codes.FINDINGS)


def find_run_dirs(root: Path) -> list[Path]:
    """Folders that look like a run: a summary.csv or args.yaml, or a single run given directly."""
    if root.is_file():
        return [root]
    found = {p.parent for marker in RUN_MARKERS for p in root.rglob(marker)}
    found |= {p.parent for p in root.rglob("events.out.tfevents.*")}
    return sorted(found) or [root]

