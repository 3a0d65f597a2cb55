"""``mnv4-postmortem batch ROOT...``: diagnose many runs, one line (or JSON object) per run."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mnv4_postmortem.cli import exit_codes
from mnv4_postmortem.cli.app import SEVERITIES, emit, stderr_console

RUN_MARKERS = ("summary.csv", "args.yaml", "*.log", "config.yaml")


@click.command("batch")
@click.argument("roots", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True,
              help="text: a table; json: one JSON report per line (JSON Lines).")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True, path_type=Path))
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None, help="Exit 1 when any run has a finding at or above this severity.")
def batch_command(roots: tuple[Path, ...], fmt: str, rule_paths: tuple[Path, ...], fail_on: str | None) -> None:
    """Diagnose every run found under ROOTS (a folder holding summary.csv, args.yaml, a timm log or
    event files). Unreadable runs are reported and skipped; progress goes to stderr."""
    from rich.progress import Progress

    from mnv4_postmortem.analyzer.diagnose import analyze, load_pack
    from mnv4_postmortem.analyzer.findings import Severity
    from mnv4_postmortem.analyzer.ingest import load_run
    from mnv4_postmortem.analyzer.model import IngestError
    from mnv4_postmortem.analyzer.render.json_render import report_dict

    run_dirs = sorted({d for root in roots for d in find_run_dirs(root)})
    pack = load_pack(rule_paths)
    threshold = Severity.parse(fail_on) if fail_on else None
    failing = unusable = 0
    with Progress(console=stderr_console(), transient=True) as progress:
        task = progress.add_task("analysing", total=len(run_dirs))
        for run_dir in run_dirs:
            progress.advance(task)
            try:
                report = analyze(load_run(run_dir), pack)
            except IngestError as exc:
                unusable += 1
                _emit_error(run_dir, str(exc), fmt)
                continue
            top = report.findings[0] if report.findings else None
            if threshold is not None and any(f.severity >= threshold for f in report.findings):
                failing += 1
            if fmt == "json":
                emit(json.dumps(report_dict(report), default=str))
            else:
                summary = f"{top.severity.name.lower():<8} {top.cause:<20} {top.title}" if top else "ok       -"
                emit(f"{str(run_dir):<60} {summary}")
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


def _emit_error(run_dir: Path, message: str, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps({"run": {"path": str(run_dir)}, "error": message}))
    else:
        click.echo(f"{str(run_dir):<60} unusable: {message}")
