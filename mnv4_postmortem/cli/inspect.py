"""``mnv4-postmortem inspect RUN_DIR``: show what was ingested."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from mnv4_postmortem.cli.app import FORMATS, emit, session, stdout_console, tb_alias_options


@click.command("inspect")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True, help="Output format.")
@tb_alias_options
def inspect_command(run_dir: Path, fmt: str, tb_alias: tuple[str, ...], tb_aliases_file: Path | None) -> None:
    """Show the sources found in RUN_DIR ("-": an excerpt pasted on stdin), the epochs and metrics each provides, config highlights,
    events (resume, crash, NaN, best metric) and every ingest warning.

    Exit code 0 when the run was read, 2 when nothing usable was found.
    """
    from mnv4_postmortem.analyzer.render.inspect_view import describe, render_text

    analyzer = session(tb_alias=tb_alias, tb_aliases_file=tb_aliases_file, with_rules=False)
    run = analyzer.load(run_dir, stdin=sys.stdin.buffer)
    view = describe(run)
    if fmt == "json":
        emit(json.dumps(view, indent=2))
    else:
        render_text(view, stdout_console())
