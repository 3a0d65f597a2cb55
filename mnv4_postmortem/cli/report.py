"""``mnv4-postmortem report RUN_DIR``: what went wrong, when, why, and the fix."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import click

from mnv4_postmortem.analyzer.render import formats
from mnv4_postmortem.cli import exit_codes
from mnv4_postmortem.analyzer.render.terminal import terminal_safe
from mnv4_postmortem.analyzer.run_argument import is_stdin
from mnv4_postmortem.cli.app import RUN_ARGUMENT, SEVERITIES, echo_err, emit, fail, rules_option, session, tb_alias_options


@click.command("report")
@click.argument("run_dir", type=RUN_ARGUMENT)
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
    2 unusable input or usage error, 3 internal error, 4 nothing to judge (the run was read but holds no
    train or eval curve over a few epochs; the report says what would be needed).
    """
    from mnv4_postmortem.analyzer.findings import Severity
    from mnv4_postmortem.analyzer.outcome import NOTHING_TO_JUDGE
    from mnv4_postmortem.analyzer.render import renderer
    from mnv4_postmortem.analyzer.watch.timeline import finding_timeline
    from mnv4_postmortem.analyzer.reproduction import AttachmentError

    analyzer = session(rule_paths, tb_alias=tb_alias, tb_aliases_file=tb_aliases_file)
    try:
        diagnosis = analyzer.analyze(run_dir, stdin=sys.stdin.buffer, verification=verification_dir,
                                     batch_grid=batch_grid, warn=_warn)
    except AttachmentError as exc:
        fail(str(exc))
    # when each finding was first visible: the run's prefixes replayed through the same pipeline
    diagnosis = replace(diagnosis, timeline=finding_timeline(diagnosis.run, analyzer.pack, diagnosis.findings))
    if fmt == "html" and output is None:
        output = default_html_path(run_dir, notice=echo_err)
    _emit(renderer("report", fmt)(diagnosis, verbose=verbose), output, fmt)
    if fail_on and any(f.severity >= Severity.parse(fail_on) for f in diagnosis.findings):
        raise SystemExit(exit_codes.FINDINGS)
    if diagnosis.outcome is not None and diagnosis.outcome.kind == NOTHING_TO_JUDGE:
        raise SystemExit(exit_codes.NOTHING_TO_JUDGE)  # read, but "no problem found" would mean nothing


def _warn(message: str) -> None:
    echo_err(f"mnv4-postmortem: warning: {message}")


def default_html_path(run_dir: Path, notice=None) -> Path:
    """``./<run-name>.postmortem.html`` in the current folder, unless that folder is inside a run directory:
    then beside the outermost one (analyzer/output_location.py; ``notice`` is told where and why)."""
    from mnv4_postmortem.analyzer.output_location import default_output_folder

    location = default_output_folder(run_dir)
    if notice is not None and location.note():
        notice(f"mnv4-postmortem: note: {location.note()}")
    if is_stdin(run_dir):  # an excerpt pasted on stdin
        name = "stdin"
    else:
        run = run_dir.resolve()
        name = (run.stem if run.is_file() else run.name) or "run"
    target = location.folder / f"{name}.postmortem.html"
    return target if location.folder != Path.cwd().resolve() else Path(target.name)


def _emit(text: str, output: Path | None, fmt: str) -> None:
    if output is None:
        emit(text)
        return
    # text, md and json files end up in terminals too (cat, less -R, a pasted issue): same escaping as stdout.
    # HTML escapes its own text (a browser draws no terminal sequences).
    try:
        output.write_text(text if fmt == "html" else terminal_safe(text), encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    echo_err(f"wrote {output.resolve()}")
