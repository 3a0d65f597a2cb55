"""``mnv4-postmortem rules list|show|validate|test``: the rule pack as documentation and as tested data."""

from __future__ import annotations

from pathlib import Path

import click

from mnv4_postmortem.analyzer.render import RulePage, formats, renderer
from mnv4_postmortem.cli import exit_codes
from mnv4_postmortem.cli.app import emit, load_rule_pack, session, tb_alias_options


@click.group("rules")
def rules_group() -> None:
    """List, document, validate and test diagnosis rules."""


@rules_group.command("list")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Also list rules from this file or folder.")
@click.option("--format", "fmt", type=click.Choice(formats("rules")), default="text", show_default=True)
def list_command(rule_paths: tuple[Path, ...], fmt: str) -> None:
    """One line per rule: id, severity, cause and title."""
    pack = load_rule_pack(rule_paths)
    emit(renderer("rules", fmt)(pack, verbose=False))
    for error in pack.errors:
        click.echo(f"rule error: {error}", err=True)


@rules_group.command("show")
@click.argument("rule_id")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True, path_type=Path))
def show_command(rule_id: str, rule_paths: tuple[Path, ...]) -> None:
    """The documentation page of one rule: what it detects, why, the evidence it cites and the fix."""
    pack = load_rule_pack(rule_paths)
    rule = pack.get(rule_id)
    if rule is None:
        raise click.BadParameter(f"no rule {rule_id!r}; see `mnv4-postmortem rules list`", param_hint="RULE_ID")
    emit(renderer("rule", "text")(RulePage(rule, pack.causes.get(rule.cause, "")), verbose=False))


@rules_group.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def validate_command(paths: tuple[Path, ...]) -> None:
    """Check rule files: schema, expressions, templates and names. Exit 1 on any error."""
    pack = load_rule_pack(paths, builtin=False)
    for error in pack.errors:
        click.echo(str(error))
    click.echo(f"{len(pack.rules)} rule(s) valid, {len(pack.errors)} error(s)", err=True)
    if pack.errors:
        raise SystemExit(exit_codes.FINDINGS)


@rules_group.command("test")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Test these rule files/folders instead of the shipped pack.")
@click.option("-v", "--verbose", is_flag=True, help="Print every case, not only failures.")
@tb_alias_options
def test_command(rule_paths: tuple[Path, ...], verbose: bool, tb_alias: tuple[str, ...], tb_aliases_file: Path | None) -> None:
    """Run every rule's must-fire / must-not-fire examples (its .test.yaml). Exit 1 on any failure."""
    from mnv4_postmortem.analyzer.engine import builtin_rules_root

    analyzer = session(rule_paths, builtin=not rule_paths, tb_alias=tb_alias, tb_aliases_file=tb_aliases_file)
    pack = analyzer.pack
    roots = list(rule_paths) if rule_paths else [Path(str(builtin_rules_root()))]
    results = analyzer.run_rule_tests(roots)
    failed = [r for r in results if not r.ok]
    for result in results:
        if verbose or not result.ok:
            click.echo(f"{result.outcome.upper():6} {result.rule_id} :: {result.case} {('- ' + result.message) if result.message else ''}")
    for error in pack.errors:
        click.echo(f"ERROR  {error}")
    passed = sum(1 for r in results if r.outcome == "pass")
    click.echo(f"{passed} passed, {len(failed) + len(pack.errors)} failed")
    if failed or pack.errors:
        raise SystemExit(exit_codes.FINDINGS)
