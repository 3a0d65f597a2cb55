"""``mnv4-postmortem report RUN_DIR``: what went wrong, when, why, and the fix."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mnv4_postmortem.analyzer.render import formats
from mnv4_postmortem.cli import exit_codes
from mnv4_postmortem.cli.app import SEVERITIES, emit, fail, rules_option, session, tb_alias_options


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(formats("report")), default="text", show_default=True,
              help="text for the terminal, json for tools, html for a self-contained page, md for a GitHub issue.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to this file instead of stdout. html is always written to a file: "
                   "./<run-name>.postmortem.html unless -o says where (never inside the run directory unless -o says so).")
@rules_option
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit 1 when a finding at or above this severity exists (for CI).")
@click.option("-v", "--verbose", is_flag=True, help="Show evidence for every finding and every ingest warning.")
@click.option("--verification", "verification_dir", type=click.Path(exists=True, path_type=Path),
              help="Add the Verification section from a `reproduce` output folder (default: the one in "
                   "./mnv4-postmortem-repro/<run-name>/ when it exists).")
@click.option("--batch-grid", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="html: embed this reproduce --show-batch PNG (default: batch_grid.png in the verification folder, if any).")
@tb_alias_options
def report_command(run_dir: Path, fmt: str, output: Path | None, rule_paths: tuple[Path, ...], fail_on: str | None,
                   verbose: bool, verification_dir: Path | None, batch_grid: Path | None, tb_alias: tuple[str, ...],
                   tb_aliases_file: Path | None) -> None:
    """Diagnose the timm run in RUN_DIR ("-": an excerpt pasted on stdin: log lines, summary rows, arguments).

    \b
    Exit codes: 0 done (nothing at or above --fail-on), 1 a finding at or above --fail-on,
    2 unusable input or usage error, 3 internal error.
    """
    from mnv4_postmortem.analyzer.findings import Severity
    from mnv4_postmortem.analyzer.render import renderer
    from mnv4_postmortem.analyzer.reproduction import AttachmentError

    analyzer = session(rule_paths, tb_alias=tb_alias, tb_aliases_file=tb_aliases_file)
    try:
        diagnosis = analyzer.analyze(run_dir, stdin=sys.stdin.buffer, verification=verification_dir,
                                     batch_grid=batch_grid, warn=_warn)
    except AttachmentError as exc:
        fail(str(exc))
    if fmt == "html" and output is None:
        output = default_html_path(run_dir)
    _emit(renderer("report", fmt)(diagnosis, verbose=verbose), output)
    if fail_on and any(f.severity >= Severity.parse(fail_on) for f in diagnosis.findings):
        raise SystemExit(exit_codes.FINDINGS)


def _warn(message: str) -> None:
    click.echo(f"mnv4-postmortem: warning: {message}", err=True)


def default_html_path(run_dir: Path) -> Path:
    """``./<run-name>.postmortem.html`` in the current folder; if that folder is the run itself (or inside
    it), the run's parent instead, so nothing is ever written into a run directory by default."""
    if str(run_dir) == "-":  # an excerpt pasted on stdin
        return Path("stdin.postmortem.html")
    run = run_dir.resolve()
    name = (run.stem if run.is_file() else run.name) or "run"
    here = Path.cwd().resolve()
    inside = here == run or run in here.parents
    folder = (run.parent if run.is_dir() else run.parent.parent) if inside else here
    target = folder / f"{name}.postmortem.html"
    return target if folder != here else Path(target.name)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        emit(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    click.echo(f"wrote {output.resolve()}", err=True)
