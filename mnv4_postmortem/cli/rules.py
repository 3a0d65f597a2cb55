"""``mnv4-postmortem rules list|show|validate|test``: the rule pack as documentation and as tested data."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mnv4_postmortem.cli import exit_codes
from mnv4_postmortem.cli.app import stdout_console


@click.group("rules")
def rules_group() -> None:
    """List, document, validate and test diagnosis rules."""


@rules_group.command("list")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Also list rules from this file or folder.")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
def list_command(rule_paths: tuple[Path, ...], fmt: str) -> None:
    """One line per rule: id, severity, cause and title."""
    from mnv4_postmortem.analyzer.diagnose import load_pack

    pack = load_pack(rule_paths)
    rows = [{"id": r.id, "severity": r.severity.name.lower(), "cause": r.cause, "title": r.title} for r in pack.rules]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    else:
        for row in sorted(rows, key=lambda r: r["id"]):
            click.echo(f"{row['id']:<32} {row['severity']:<8} {row['cause']:<20} {row['title']}")
    for error in pack.errors:
        click.echo(f"rule error: {error}", err=True)


@rules_group.command("show")
@click.argument("rule_id")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True, path_type=Path))
def show_command(rule_id: str, rule_paths: tuple[Path, ...]) -> None:
    """The documentation page of one rule: what it detects, why, the evidence it cites and the fix."""
    from mnv4_postmortem.analyzer.diagnose import load_pack

    pack = load_pack(rule_paths)
    rule = pack.get(rule_id)
    if rule is None:
        raise click.BadParameter(f"no rule {rule_id!r}; see `mnv4-postmortem rules list`", param_hint="RULE_ID")
    console = stdout_console()
    console.print(f"[bold]{rule.id}[/bold]: {rule.title}", markup=True)
    console.print(f"cause: {rule.cause} ({pack.causes.get(rule.cause, '')})", markup=False)
    console.print(f"severity: {rule.severity.name.lower()}", markup=False)
    console.print(f"\nwhen:\n  {rule.when.text.strip()}", markup=False)
    if rule.epochs is not None:
        console.print(f"epochs: {rule.epochs.text.strip()}" + (f"  (for: {rule.for_epochs})" if rule.for_epochs else ""), markup=False)
    console.print("\nevidence:", markup=False)
    for template in rule.evidence:
        console.print(f"  - {template.source.strip()}", markup=False)
    if rule.explanation:
        console.print(f"\n{rule.explanation.strip()}", markup=False)
    if rule.fix is not None:
        args = {k: (f"={v.text}" if hasattr(v, "text") else v) for k, v in rule.fix.args.items()}
        console.print(f"\nfix: {args}" + (f"\n  {rule.fix.note}" if rule.fix.note else ""), markup=False)
    if rule.references:
        console.print("\nreferences:", markup=False)
        for ref in rule.references:
            console.print(f"  {ref}", markup=False)


@rules_group.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def validate_command(paths: tuple[Path, ...]) -> None:
    """Check rule files: schema, expressions, templates and names. Exit 1 on any error."""
    from mnv4_postmortem.analyzer.diagnose import load_pack

    pack = load_pack(paths, builtin=False)
    for error in pack.errors:
        click.echo(str(error))
    click.echo(f"{len(pack.rules)} rule(s) valid, {len(pack.errors)} error(s)", err=True)
    if pack.errors:
        raise SystemExit(exit_codes.FINDINGS)


@rules_group.command("test")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Test these rule files/folders instead of the shipped pack.")
@click.option("-v", "--verbose", is_flag=True, help="Print every case, not only failures.")
def test_command(rule_paths: tuple[Path, ...], verbose: bool) -> None:
    """Run every rule's must-fire / must-not-fire examples (its .test.yaml). Exit 1 on any failure."""
    from mnv4_postmortem.analyzer.diagnose import load_pack, load_run, namespace_for, synthetic_run
    from mnv4_postmortem.analyzer.engine import builtin_rules_root, find_test_files, run_rule_tests

    pack = load_pack(rule_paths, builtin=not rule_paths)
    roots = list(rule_paths) if rule_paths else [Path(str(builtin_rules_root()))]
    results = run_rule_tests(pack, find_test_files(roots), diagnose=namespace_for, load_run=load_run, make_run=synthetic_run)
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
