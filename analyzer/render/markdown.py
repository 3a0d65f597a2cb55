"""GitHub-flavoured Markdown: the report to paste into an issue, and the escaping every Markdown output uses."""

from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md_text(value: object) -> str:
    """Inline text that renders as itself on GitHub: HTML characters as entities (so raw HTML in a run name
    never becomes markup), Markdown punctuation backslash-escaped, newlines as spaces."""
    text = html.escape(str(value), quote=False).replace("\r", " ").replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_cell(value: object) -> str:
    """A table cell: like :func:`md_text` (``|`` is escaped there too, so cells never split)."""
    return md_text("" if value is None else value)


def render(report, *, verbose: bool = False) -> str:
    """The report for a GitHub issue: a findings table, the evidence, each fix as a ``diff`` block of the
    train.py command line, and the differential folded in a ``<details>`` block."""
    facts = report.report_facts
    info = report.summary.as_dict()
    ep = info["epochs"]
    span = f"epochs {ep['first']}–{ep['last']}" if ep["count"] else "no epochs"
    out = [
        f"### mnv4-postmortem: `{_code(report.run.run_dir.name or str(report.run.run_dir))}`",
        "",
        f"model {md_text(info['model'] or '?')}, timm {md_text(info['timm_version'] or '?')}, {span}"
        + (f" of {ep['scheduled']} scheduled" if ep["scheduled"] else "")
        + (f"; trainer: {md_text(info['trainer'])}" if info.get("trainer") else ""),
        "",
    ]
    if report.outcome is not None and report.outcome.headline:
        word, _, rest = report.outcome.headline.partition(":")
        out += [f"**{md_text(word)}**:{md_text(rest)}", ""]
    if report.findings:
        out += ["| # | severity | cause | confidence | epochs | finding |", "|---:|---|---|---:|---|---|"]
        for rank, f in enumerate(report.findings, 1):
            epochs = f"{f.epochs[0]}–{f.epochs[1]}" if f.epochs else ""
            out.append(f"| {rank} | {f.severity.label} | {md_cell(f.cause)} | {f.confidence:.2f} | {epochs} | {md_cell(f.title)} |")
        out.append("")
    for rank, f in enumerate(report.findings, 1):
        out += [f"#### {rank}. {md_text(f.cause)} ({f.severity.label}, rule `{_code(f.rule_id)}`)", ""]
        out += [f"- {md_text(e.text)}" for e in f.evidence]
        out.append("")
        if f.fix is not None:
            args = ", ".join(f"`{_code(f'{k}={v}')}`" for k, v in f.fix.args.items())
            out.append(f"**Fix** ({md_text(f.fix.safety)}): {args}" + (f" — {md_text(f.fix.note)}" if f.fix.note else ""))
            diff = flag_diff_lines(facts.base_command if facts else None, f.fix.command)
            if diff:
                out += ["", "```diff", *diff, "```"]
            if f.fix.command:
                out += ["", "<details><summary>fixed command</summary>", "", "```sh", _fence_safe(f.fix.command), "```",
                        "", "</details>"]
            out.append("")
    for item in report.unexplained:
        symptom = item.symptom
        epochs = f", epochs {symptom.epochs[0]}–{symptom.epochs[1]}" if symptom.epochs else ""
        out += [f"**Unexplained symptom ({symptom.severity.label})**: {md_text(symptom.title)} "
                f"(strength {symptom.strength:.2f}{epochs})", ""]
        out += [f"- {md_text(e.text)}" for e in symptom.evidence]
        out += [f"- candidate causes: {md_text(', '.join(item.candidates))}"]
        if symptom.tell_apart:
            out += [f"- to tell them apart: {md_text(symptom.tell_apart)}"]
        out += [""]
    if report.differential:
        out += ["<details><summary>Differential: other causes considered, and why they rank lower</summary>", ""]
        out += [f"- {md_text(line)}" for line in report.differential]
        out += ["", "</details>", ""]
    if report.warnings:
        shown = report.warnings if verbose else report.warnings[:10]
        out += [f"<details><summary>{len(report.warnings)} ingest warning(s)</summary>", ""]
        out += [f"- {md_text(w)}" for w in shown]
        if len(shown) < len(report.warnings):
            out.append(f"- … {len(report.warnings) - len(shown)} more (`mnv4-postmortem inspect` lists all)")
        out += ["", "</details>", ""]
    out += _coverage(report)
    versions = [f"schema {report.schema_version}"]
    if facts is not None:
        versions += [f"rule pack {facts.rule_pack_version}", f"timm era {facts.timm_era}"]
    from mnv4_postmortem import __version__

    out.append(f"<sub>mnv4-postmortem {__version__} · " + " · ".join(md_text(v) for v in versions) + "</sub>")
    return "\n".join(out) + "\n"


def _coverage(report) -> list[str]:
    """The coverage statement (coverage.py), folded: a one-line summary, the details inside."""
    from mnv4_postmortem.analyzer.render.coverage_lines import (
        blocked_lines, checks_line, config_line, other_config_lines, series_line,
    )

    coverage = report.coverage
    if coverage is None:
        return []
    out = [f"<details><summary>Coverage: {md_text(checks_line(coverage))}</summary>", "",
           f"- series: {md_text(series_line(coverage))}", f"- config: {md_text(config_line(coverage))}"]
    out += [f"- other config: {md_text(line)}" for line in other_config_lines(coverage)]
    out += [f"- {md_text(line)}" for line in blocked_lines(coverage)]
    return out + ["", "</details>", ""]


def flag_diff_lines(base: str | None, fixed: str | None) -> list[str]:
    """One flag per line, ``-`` removed, ``+`` added, two spaces unchanged: GitHub colours exactly the changes."""
    import difflib

    from mnv4_postmortem.analyzer.render.html import flag_groups

    if not fixed:
        return []
    new = flag_groups(fixed)
    old = flag_groups(base) if base else []
    lines: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            lines += [f"  {g}" for g in old[i1:i2]]
            continue
        lines += [f"- {g}" for g in old[i1:i2]]
        lines += [f"+ {g}" for g in new[j1:j2]]
    return [_fence_safe(line) for line in lines]


def _fence_safe(text: str) -> str:
    """Inside a fenced block only a run of backticks can end it: keep any line from looking like one."""
    return str(text).replace("`", "'").replace("\n", " ")


def _code(text: str) -> str:
    """Inside a code span nothing is interpreted; a backtick would end it, so it becomes a quote."""
    return str(text).replace("`", "'").replace("\n", " ")
