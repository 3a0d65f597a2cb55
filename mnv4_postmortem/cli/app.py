"""Shared CLI plumbing: stdout carries data, stderr carries status, warnings and errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping, NoReturn

import click
from rich.console import Console

from mnv4_postmortem.cli import exit_codes

FORMATS = ("text", "json")
SEVERITIES = ("info", "warning", "error", "critical")  # for --fail-on, lowest first


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # `report RUN | head`: the reader left, which is not a failure. rich exits 1 here, and 1 means
        # "findings at or above --fail-on" in our exit codes.
        _quiet_exit_on_closed_pipe()


def _quiet_exit_on_closed_pipe() -> None:
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise SystemExit(exit_codes.OK)


class _RunArgument(click.ParamType):
    """A run folder or file as a ``Path``; the bare ``-`` (stdin) stays the string ``"-"``, because
    ``Path("./-")`` and ``Path("-")`` are equal and ``./-`` must read the folder named ``-``."""

    name = "run"

    def convert(self, value, param, ctx):
        if isinstance(value, Path) or value != "-":
            return Path(value)
        return value


RUN_ARGUMENT = _RunArgument()


def emit(text: str) -> None:
    """Write data to stdout, every control character escaped (render/terminal.py: data never drives the
    terminal). `... | head` closing the pipe is not an error (exit 0, no traceback)."""
    from mnv4_postmortem.analyzer.render.terminal import terminal_safe

    text = terminal_safe(text)
    try:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_exit_on_closed_pipe()


def stdout_console() -> Console:
    return _Console(file=sys.stdout, soft_wrap=True, highlight=False)


def stderr_console() -> Console:
    return Console(file=sys.stderr, soft_wrap=True, highlight=False)


def echo_err(message: str) -> None:
    """A status line on stderr; it may quote data (a file name), so it is escaped like stdout."""
    from mnv4_postmortem.analyzer.render.terminal import terminal_safe

    click.echo(terminal_safe(str(message)), err=True)


def fail(message: str, code: int = exit_codes.UNUSABLE) -> NoReturn:
    echo_err(f"mnv4-postmortem: error: {message}")
    sys.exit(code)


def debug_enabled() -> bool:
    return os.environ.get("MNV4_DEBUG", "") not in ("", "0")


def session(rule_paths: tuple[Path, ...] | list[Path] = (), *, builtin: bool = True, tb_alias: tuple[str, ...] = (),
            tb_aliases_file: Path | None = None, with_rules: bool = True):
    """The command's ``Analyzer`` session, its rule pack loaded once (``with_rules``: now, so what the
    loader notices, an override, goes to stderr before any output)."""
    from mnv4_postmortem.analyzer.session import Analyzer, AnalyzerOptions

    options = AnalyzerOptions.of(rule_paths, builtin=builtin, tb_aliases=collect_aliases(tb_alias, tb_aliases_file))
    analyzer = Analyzer(options)
    for notice in analyzer.pack.notices if with_rules else ():
        echo_err(f"mnv4-postmortem: note: {notice}")
    return analyzer


def load_rule_pack(paths: tuple[Path, ...] | list[Path] = (), *, builtin: bool = True):
    """The shipped rules plus ``--rules`` paths (the session's pack)."""
    return session(paths, builtin=builtin).pack


def rules_option(func):
    """--rules PATH (repeatable): extra rule files or folders, for every command that diagnoses runs."""
    return click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
                        help="Extra rule file or folder, added to the shipped rules (repeatable).")(func)


def tb_alias_options(func):
    """--tb-alias TAG=NAME (repeatable) and --tb-aliases FILE extend the TensorBoard tag table."""
    func = click.option("--tb-alias", "tb_alias", multiple=True, metavar="TAG=NAME",
                        help="Map a TensorBoard tag to a canonical metric (repeatable), e.g. 'val/acc@1=eval_top1'.")(func)
    func = click.option("--tb-aliases", "tb_aliases_file", type=click.Path(dir_okay=False, path_type=Path),
                        help="YAML file mapping TensorBoard tags to canonical metric names.")(func)
    return func


def collect_aliases(pairs: tuple[str, ...], file: Path | None) -> Mapping[str, str] | None:
    if not pairs and file is None:
        return None  # no aliases asked for: light commands (rules list) must not import ingest for nothing
    from mnv4_postmortem.analyzer.ingest.tensorboard import load_alias_file

    aliases: dict[str, str] = {}
    if file is not None:
        aliases.update(load_alias_file(file))
    for pair in pairs:
        tag, sep, name = pair.partition("=")
        if not sep or not tag or not name:
            raise click.BadParameter(f"expected TAG=NAME, got {pair!r}", param_hint="--tb-alias")
        aliases[tag] = name
    return aliases or None
