"""Command-line interface. The root group only wires the subcommands together."""

from __future__ import annotations

import os
import sys

import click

from mnv4_postmortem import __version__
from mnv4_postmortem.cli import exit_codes


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mnv4-postmortem")
def cli() -> None:
    """Post-mortem analyzer for timm training runs: what went wrong, when, why, and the fix."""


def _register() -> None:
    # Command modules import only click at module level; analysis code loads inside each command,
    # so `--help` stays fast.
    from mnv4_postmortem.cli.batch import batch_command
    from mnv4_postmortem.cli.inspect import inspect_command
    from mnv4_postmortem.cli.lr_find import lr_find_command
    from mnv4_postmortem.cli.report import report_command
    from mnv4_postmortem.cli.reproduce import reproduce_command
    from mnv4_postmortem.cli.rules import rules_group
    from mnv4_postmortem.cli.watch import watch_command

    for command in (report_command, inspect_command, batch_command, rules_group, reproduce_command, lr_find_command,
                    watch_command):
        cli.add_command(command)


_register()


def main() -> None:
    """Entry point: bad input gets a message and an exit code, never a traceback."""
    from mnv4_postmortem.analyzer.model import IngestError
    from mnv4_postmortem.analyzer.render.terminal import terminal_safe
    from mnv4_postmortem.cli.app import debug_enabled, echo_err

    try:
        cli.main(standalone_mode=False)
        sys.stdout.flush()  # surface a closed pipe here, not at interpreter exit
    except (click.exceptions.Abort, KeyboardInterrupt):
        # Ctrl-C where a command keeps nothing: the shell's convention (128 + SIGINT), never "unusable input"
        click.echo("Aborted.", err=True)
        sys.exit(exit_codes.INTERRUPTED)
    except click.ClickException as exc:
        exc.message = terminal_safe(exc.message)  # it may quote a path or value
        exc.show()
        sys.exit(exit_codes.UNUSABLE)
    except IngestError as exc:
        echo_err(f"mnv4-postmortem: error: {exc}")
        sys.exit(exit_codes.UNUSABLE)
    except SystemExit:
        raise
    except BrokenPipeError:
        # `report ... | head`: the reader left; that is not an error. Point stdout at /dev/null so the
        # interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(exit_codes.OK)
    except Exception as exc:  # a bug of ours: say so plainly instead of dumping a traceback
        if debug_enabled():
            raise
        echo_err(f"mnv4-postmortem: internal error: {type(exc).__name__}: {exc} (set MNV4_DEBUG=1 for details)")
        sys.exit(exit_codes.INTERNAL)
