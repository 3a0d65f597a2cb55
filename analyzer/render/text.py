"""Terminal output of ``report``: the diagnosis first, then the evidence and the fix.

Rendered through rich into a string (plain text, lines not wrapped), so the same text goes to a
terminal, a pipe or ``-o FILE``.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.markup import escape as markup_escape

from mnv4_postmortem.analyzer.diagnosis import Diagnosis
from mnv4_postmortem.analyzer.findings import Finding, Severity
from mnv4_postmortem.analyzer.outcome import NO_PROBLEM_FOUND
from mnv4_postmortem.analyzer.render.coverage_lines import blocked_lines, checks_line, config_line, other_config_lines, series_line
from mnv4_postmortem.analyzer.render.verification import render_verification_text
from mnv4_postmortem.analyzer.render.terminal import terminal_safe

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.ERROR: "bold red",
    Severity.WARNING: "yellow",
    Severity.INFO: "cyan",
}
MAX_WARNINGS_SHOWN = 5


def escape(text: str) -> str:
    """Data shown through rich: control characters made visible first (render/terminal.py; rich would
    drop some silently and pass ESC through), then rich markup escaped."""
    return markup_escape(terminal_safe(str(text)))


def _unexplained(diagnosis: Diagnosis, console: Console) -> None:
    """Symptoms at warning or above that no finding explains: what the curves show, the candidate causes and
    what would tell them apart (issue 13: no strong symptom goes unreported)."""
    for item in diagnosis.unexplained:
        symptom = item.symptom
        style = SEVERITY_STYLE.get(symptom.severity, "")
        epochs = f", epochs {symptom.epochs[0]}-{symptom.epochs[1]}" if symptom.epochs else ""
        console.print(f"\n[{style}]UNEXPLAINED SYMPTOM ({symptom.severity.label})[/{style}] {escape(symptom.title)}"
                      f" (strength {symptom.strength:.2f}{epochs})")
        for evidence in symptom.evidence:
            console.print(f"  - {escape(evidence.text)}")
        console.print(f"  candidate causes: {escape(', '.join(item.candidates)) or 'none known'}")
        if symptom.tell_apart:
            console.print(f"  to tell them apart: {escape(symptom.tell_apart)}")


def render(diagnosis: Diagnosis, *, verbose: bool = False) -> str:
    console = Console(file=io.StringIO(), soft_wrap=True, highlight=False, force_terminal=False, color_system=None)
    _header(diagnosis, console)
    _outcome(diagnosis, console)
    for rank, finding in enumerate(diagnosis.findings, 1):
        seen = diagnosis.timeline.get(finding.rule_id)
        _finding(rank, finding, console,
                 detailed=rank == 1 or verbose or finding.severity >= Severity.ERROR or finding.latent,
                 visibility=seen.describe() if seen is not None else "")
    _unexplained(diagnosis, console)
    _combined_fix(diagnosis, console)
    if diagnosis.differential:
        console.print("\n[bold]Differential[/bold] (alternatives considered, and why they rank lower)")
        for line in diagnosis.differential:
            console.print(f"  - {escape(line)}")
    _warnings(diagnosis, console, verbose)
    for line in diagnosis.rule_errors:
        console.print(f"[red]rule error:[/red] {escape(line)}")
    if diagnosis.verification is not None:
        render_verification_text(diagnosis.verification, console)
    _coverage(diagnosis, console)
    return console.file.getvalue()


def _outcome(diagnosis: Diagnosis, console: Console) -> None:
    """The headline when no finding is at warning or above: "No problem found" or "Nothing to judge"."""
    outcome = diagnosis.outcome
    if outcome is None or not outcome.headline:
        return
    word, _, rest = outcome.headline.partition(":")
    style = "green" if outcome.kind == NO_PROBLEM_FOUND else "bold yellow"
    console.print(f"[{style}]{escape(word)}[/{style}]:{escape(rest)}")


def _coverage(diagnosis: Diagnosis, console: Console) -> None:
    """What the run's files let the checks judge (coverage.py), after everything else."""
    coverage = diagnosis.coverage
    if coverage is None:
        return
    console.print("\n[bold]Coverage[/bold] (what the files let the checks judge)")
    console.print(f"  series: {escape(series_line(coverage))}")
    console.print(f"  config: {escape(config_line(coverage))}")
    for line in other_config_lines(coverage):
        console.print(f"  other config: {escape(line)}")
    console.print(f"  checks: {escape(checks_line(coverage))}")
    for line in blocked_lines(coverage):
        console.print(f"    {escape(line)}")


def _header(diagnosis: Diagnosis, console: Console) -> None:
    info = diagnosis.summary
    ep = info.epochs
    span = f"epochs {ep['first']}..{ep['last']}" if ep["count"] else "no epochs"
    sched = f" of {ep['scheduled']} scheduled" if ep["scheduled"] else ""
    console.print(f"[bold]{escape(info.path)}[/bold]  model {escape(str(info.model or '?'))}, "
                  f"timm {escape(str(info.timm_version or '?'))}, {span}{sched}")
    if info.trainer:
        console.print(f"trainer: {escape(info.trainer)}")


def _combined_fix(diagnosis: Diagnosis, console: Console) -> None:
    fix = diagnosis.combined_fix
    if fix is None:
        return
    args = ", ".join(f"{k}={v}" for k, v in fix.args.items())
    console.print(f"\n[bold]Combined fix[/bold] ({escape(fix.note)}): {escape(args)}")
    if fix.command:
        console.print(f"   [green]{escape(fix.command)}[/green]")


def _warnings(diagnosis: Diagnosis, console: Console, verbose: bool) -> None:
    if not diagnosis.warnings:
        return
    shown = diagnosis.warnings if verbose else diagnosis.warnings[:MAX_WARNINGS_SHOWN]
    console.print(f"\n[dim]{len(diagnosis.warnings)} ingest warning(s)[/dim]")
    for line in shown:
        console.print(f"  [dim]{escape(line)}[/dim]")
    if len(shown) < len(diagnosis.warnings):
        console.print("  [dim]... (use --verbose, or `mnv4-postmortem inspect`, for all)[/dim]")


def _finding(rank: int, finding: Finding, console: Console, *, detailed: bool, visibility: str = "") -> None:
    style = SEVERITY_STYLE.get(finding.severity, "")
    epochs = f" epochs {finding.epochs[0]}-{finding.epochs[1]}" if finding.epochs else ""
    console.print(
        f"\n{rank}. [{style}]{finding.severity.name.lower()}[/{style}] [bold]{escape(finding.cause)}[/bold]"
        f" ({escape(' + '.join(finding.rules or (finding.rule_id,)))}, confidence {finding.confidence:.2f}){epochs}"
        + (" [magenta]latent[/magenta]" if finding.latent else "")
    )
    console.print(f"   {escape(finding.title)}")
    if not detailed:
        return
    if visibility:
        console.print(f"   [dim]{escape(visibility)}[/dim]")
    for evidence in finding.evidence:
        # Templates cite their sources inline (cite()); the structured refs are in the JSON.
        console.print(f"   - {escape(evidence.text)}")
    fix = finding.fix
    if fix is not None:
        args = ", ".join(f"{k}={v}" for k, v in fix.args.items())
        safety = "" if fix.safety == "safe" else f" ({escape(fix.safety)})"
        console.print(f"   [bold]Fix[/bold]{safety}: {escape(args)}" + (f" - {escape(fix.note)}" if fix.note else ""))
        if fix.command:
            console.print(f"   [green]{escape(fix.command)}[/green]")
