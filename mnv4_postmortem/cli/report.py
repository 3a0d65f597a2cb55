"""``mnv4-postmortem report RUN_DIR``: what went wrong, when, why, and the fix."""

from __future__ import annotations

from pathlib import Path

import click

from mnv4_postmortem.cli import exit_codes
from mnv4_postmortem.cli.app import SEVERITIES, collect_aliases, emit, fail, stdout_console, tb_alias_options

REPORT_FORMATS = ("text", "json", "html")


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS), default="text", show_default=True,
              help="text for the terminal, json for tools, html for a self-contained page.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to this file instead of stdout (never inside the run directory unless you say so).")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Extra rule file or folder, added to the shipped rules (repeatable).")
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
    from mnv4_postmortem.analyzer.diagnose import analyze, load_pack
    from mnv4_postmortem.analyzer.findings import Severity
    from mnv4_postmortem.analyzer.ingest import load_input

    run = load_input(run_dir, stdin=click.get_binary_stream("stdin"), tb_aliases=collect_aliases(tb_alias, tb_aliases_file))
    report = analyze(run, load_pack(rule_paths))
    from mnv4_postmortem.cli.verification_section import find_verification, with_verification

    grid = _batch_grid(run_dir, verification_dir, batch_grid) if fmt == "html" else None
    verification = find_verification(run_dir, verification_dir) if str(run_dir) != "-" or verification_dir else None
    text = with_verification(_render(report, fmt, output, verbose, grid), verification, fmt, output)
    if text is not None:
        _emit(text, output)
    if fail_on and any(f.severity >= Severity.parse(fail_on) for f in report.findings):
        raise SystemExit(exit_codes.FINDINGS)


def _batch_grid(run_dir: Path, verification_dir: Path | None, given: Path | None) -> bytes | None:
    """The --show-batch PNG: the one given, else batch_grid.png in the verification folder (--verification,
    else reproduce's default out folder for this run)."""
    if given is None:
        folder = verification_dir if verification_dir is not None else (
            None if str(run_dir) == "-" else Path("mnv4-postmortem-repro") / Path(run_dir).resolve().name)
        default = folder / "batch_grid.png" if folder is not None else None
        given = default if default is not None and default.is_file() else None
    try:
        return given.read_bytes() if given is not None else None
    except OSError as exc:
        fail(f"cannot read {given}: {exc.strerror or exc}")


def _render(report, fmt: str, output: Path | None, verbose: bool, batch_grid: bytes | None = None) -> str | None:
    if fmt == "json":
        from mnv4_postmortem.analyzer.render.json_render import render_json

        return render_json(report)
    if fmt == "html":
        from mnv4_postmortem.analyzer.render.html import render_html

        return render_html(report, batch_grid)
    from mnv4_postmortem.analyzer.render.text import render_text

    if output is None:
        render_text(report, stdout_console(), verbose=verbose)
        return None
    import io

    from rich.console import Console

    console = Console(record=True, width=100, file=io.StringIO())  # recorded for the file, not shown
    render_text(report, console, verbose=verbose)
    return console.export_text()


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        emit(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    click.echo(f"wrote {output}", err=True)
