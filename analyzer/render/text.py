"""Terminal output of ``report``: the diagnosis first, then the evidence and the fix."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from mnv4_postmortem.analyzer.findings import Severity
from mnv4_postmortem.analyzer.report import Report

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.ERROR: "bold red",
    Severity.WARNING: "yellow",
    Severity.INFO: "cyan",
}


def render_text(report: Report, console: Console, *, verbose: bool = False) -> None:
    info = report.run_info
    ep = info["epochs"]
    span = f"epochs {ep['first']}..{ep['last']}" if ep["count"] else "no epochs"
    sched = f" of {ep['scheduled']} scheduled" if ep["scheduled"] else ""
    console.print(f"[bold]{escape(info['path'])}[/bold]  model {escape(str(info['model'] or '?'))}, "
                  f"timm {escape(str(info['timm_version'] or '?'))}, {span}{sched}")
    if not report.findings:
        console.print("[green]No problem found[/green]: no rule fired.")
    for rank, finding in enumerate(report.findings, 1):
        _render_finding(rank, finding, console, detailed=rank == 1 or verbose or finding.severity >= Severity.ERROR or finding.latent)
    if report.combined_fix is not None:
        fix = report.combined_fix
        args = ", ".join(f"{k}={v}" for k, v in fix.args.items())
        console.print(f"\n[bold]Combined fix[/bold] ({escape(fix.note)}): {escape(args)}")
        if fix.command:
            console.print(f"   [green]{escape(fix.command)}[/green]")
    if report.differential:
        console.print("\n[bold]Differential[/bold] (alternatives considered, and why they rank lower)")
        for line in report.differential:
            console.print(f"  - {escape(line)}")
    if report.warnings:
        shown = report.warnings if verbose else report.warnings[:5]
        console.print(f"\n[dim]{len(report.warnings)} ingest warning(s)[/dim]")
        for line in shown:
            console.print(f"  [dim]{escape(line)}[/dim]")
        if len(shown) < len(report.warnings):
            console.print("  [dim]... (use --verbose, or `mnv4-postmortem inspect`, for all)[/dim]")
    for line in report.rule_errors:
        console.print(f"[red]rule error:[/red] {escape(line)}")


def _render_finding(rank: int, finding, console: Console, *, detailed: bool) -> None:
    style = SEVERITY_STYLE.get(finding.severity, "")
    epochs = f" epochs {finding.epochs[0]}-{finding.epochs[1]}" if finding.epochs else ""
    console.print(
        f"\n{rank}. [{style}]{finding.severity.name.lower()}[/{style}] [bold]{escape(finding.cause)}[/bold]"
        f" ({escape(finding.rule_id)}, confidence {finding.confidence:.2f}){epochs}"
        + (" [magenta]latent[/magenta]" if finding.latent else "")
    )
    console.print(f"   {escape(finding.title)}")
    if not detailed:
        return
    for evidence in finding.evidence:
        # Templates cite their sources inline (cite()), so evidence.refs is not repeated here.
        console.print(f"   - {escape(evidence.text)}")
    if finding.fix is not None:
        args = ", ".join(f"{k}={v}" for k, v in finding.fix.args.items())
        console.print(f"   [bold]Fix[/bold]: {escape(args)}" + (f" - {escape(finding.fix.note)}" if finding.fix.note else ""))
        if finding.fix.command:
            console.print(f"   [green]{escape(finding.fix.command)}[/green]")
