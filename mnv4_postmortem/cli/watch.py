"""``mnv4-postmortem watch RUN_DIR``: follow a run while timm writes it, print what changes, stop or alert."""

from __future__ import annotations

from pathlib import Path

import click

from mnv4_postmortem.cli.app import SEVERITIES, collect_aliases, emit, load_rule_pack, tb_alias_options


@click.command("watch")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True,
              help="text lines, or JSON lines (one event per line).")
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit 1 at the first finding at or above this severity (a wrapper can then stop the job).")
@click.option("--on-finding", "on_finding", metavar="CMD", default=None,
              help="Run CMD (through the shell) with the finding as JSON on stdin, for each finding at or above "
                   "--fail-on (warning when --fail-on is not given), e.g. 'kill 1234' or 'scancel $JOB'.")
@click.option("--until-done", is_flag=True,
              help="Exit when the run ends (timm's '*** Best metric' line, or --idle seconds without new data), "
                   "then print the full report.")
@click.option("--idle", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
              help="With --until-done: no new data for this long means the run ended.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="First wait between polls in seconds; it doubles while nothing changes, up to --max-interval.")
@click.option("--max-interval", type=click.FloatRange(min=0.05), default=10.0, show_default=True)
@click.option("--confirm", type=click.IntRange(min=1), default=3, show_default=True,
              help="Diagnosed epochs a finding read from the curves must hold (or be gone) before it is announced "
                   "(or withdrawn); predictions from the recipe are announced at once.")
@click.option("--poll", "poll_only", is_flag=True, help="Poll only (do not use watchfiles' file-system events).")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Extra rule file or folder, added to the shipped rules (repeatable).")
@tb_alias_options
def watch_command(run_dir: Path, fmt: str, fail_on: str | None, on_finding: str | None, until_done: bool,
                  idle: float | None, interval: float, max_interval: float, confirm: int, poll_only: bool,
                  rule_paths: tuple[Path, ...], tb_alias: tuple[str, ...], tb_aliases_file: Path | None) -> None:
    """Follow the timm run in RUN_DIR while it trains (it may not exist yet).

    \b
    Prints a timestamped line when a finding starts or stops firing or the top cause changes; findings
    the recipe already decides are printed at the first epoch or before, marked predicted.
    Exit codes: 0 done or interrupted, 1 a finding at or above --fail-on, 2 usage error.
    """
    from mnv4_postmortem.analyzer.findings import Severity
    from mnv4_postmortem.analyzer.watch.follow import WatchOptions, follow

    options = WatchOptions(
        interval=interval, max_interval=max(interval, max_interval), idle=idle, until_done=until_done,
        fail_on=Severity.parse(fail_on) if fail_on else None, on_finding=on_finding, fmt=fmt, confirm=confirm,
        use_watchfiles=not poll_only, tb_aliases=collect_aliases(tb_alias, tb_aliases_file),
    )
    pack = load_rule_pack(rule_paths)
    try:
        result = follow(run_dir, pack, options, emit, lambda message: click.echo(f"mnv4-postmortem: warning: {message}", err=True))
    except KeyboardInterrupt:
        raise SystemExit(0) from None
    raise SystemExit(result.exit_code)
