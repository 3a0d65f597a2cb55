"""``mnv4-postmortem report RUN_DIR``: what went wrong, when, why, and the fix."""

from __future__ import annotations

from pathlib import Path

import click

from mnv4_postmortem.cli import exit_codes
from mnv4_postmortem.cli.app import SEVERITIES, collect_aliases, emit, fail, stdout_console, tb_alias_options

REPORT_FORMATS = ("text", "json", "html", "md")


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS), default="text", show_default=True,
              help="text for the terminal, json for tools, html for a self-contained page, md for a GitHub issue.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to this file instead of stdout. html is always written to a file: "
                   "./<run-name>.postmortem.html unless -o says where (never inside the run directory unless -o says so).")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Extra rule file or folder, added to the shipped rules (repeatable).")
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit 1 when a finding at or above this severity exists (for CI).")
@click.option("-v", "--verbose", is_flag=True, help="Show evidence for every finding and every ingest warning.")
@tb_alias_options
def report_command(run_dir: Path, fmt: str, output: Path | None, rule_paths: tuple[Path, ...], fail_on: str | None,
                   verbose: bool, tb_alias: tuple[str, ...], tb_aliases_file: Path | None) -> None:
    """Diagnose the timm run in RUN_DIR.

    \b
    Exit codes: 0 done (nothing at or above --fail-on), 1 a finding at or above --fail-on,
    2 unusable input or usage error, 3 internal error.
    """
    from mnv4_postmortem.analyzer.diagnose import analyze, load_pack
    from mnv4_postmortem.analyzer.findings import Severity
    from mnv4_postmortem.analyzer.ingest import load_run

    run = load_run(run_dir, tb_aliases=collect_aliases(tb_alias, tb_aliases_file))
    report = analyze(run, load_pack(rule_paths))
    if fmt == "html" and output is None:
        output = default_html_path(run_dir)
    text = _render(report, fmt, output, verbose)
    if text is not None:
        _emit(text, output)
    if fail_on and any(f.severity >= Severity.parse(fail_on) for f in report.findings):
        raise SystemExit(exit_codes.FINDINGS)


def _render(report, fmt: str, output: Path | None, verbose: bool) -> str | None:
    if fmt == "json":
        from mnv4_postmortem.analyzer.render.json_render import render_json

        return render_json(report)
    if fmt == "html":
        from mnv4_postmortem.analyzer.render.html import render_html

        return render_html(report, verbose=verbose)
    if fmt == "md":
        from mnv4_postmortem.analyzer.render.markdown import render_markdown

        return render_markdown(report, verbose=verbose)
    from mnv4_postmortem.analyzer.render.text import render_text

    if output is None:
        render_text(report, stdout_console(), verbose=verbose)
        return None
    import io

    from rich.console import Console

    console = Console(record=True, width=100, file=io.StringIO())  # recorded for the file, not shown
    render_text(report, console, verbose=verbose)
    return console.export_text()


def default_html_path(run_dir: Path) -> Path:
    """``./<run-name>.postmortem.html`` in the current folder; if that folder is the run itself (or inside
    it), the run's parent instead, so nothing is ever written into a run directory by default."""
    run = run_dir.resolve()
    name = (run.stem if run.is_file() else run.name) or "run"
    here = Path.cwd().resolve()
    folder = here if not (here == run or run in here.parents) else run.parent if run.is_dir() else run.parent.parent
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
