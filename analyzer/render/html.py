"""The HTML report: one self-contained file (inline CSS, SVG and a little JS; no network), made from the
report and its facts. Jinja2 templates, packaged, autoescaped (render/environment.py).

Everything shown is read from the report: findings, segments, and the facts their owners produced in the
pipeline's one pass (report_facts.py types them).
What happens here is layout only: splitting evidence text around its citations so each becomes a link,
and laying a fix's command line beside the run's own one as a diff of flags.
"""

from __future__ import annotations

import base64
import shlex
from typing import Any, Sequence

from mnv4_postmortem.analyzer.citations import Citation, group
from mnv4_postmortem.analyzer.render.environment import template_environment
from mnv4_postmortem.analyzer.render.json_render import report_dict
from mnv4_postmortem.analyzer.render.plots import (
    grad_norm_svg,
    lr_svg,
    metrics_svg,
    model_vs_ema_svg,
    step_loss_svg,
)
from mnv4_postmortem.analyzer.render.verification import render_verification_html
from mnv4_postmortem.analyzer.render.versions import footer_versions
from mnv4_postmortem.analyzer.diagnosis import Diagnosis

TIMELINE_KINDS = ("resume", "crash", "oom", "nonfinite", "best_metric", "checkpoint", "truncated", "skipped_eval")
CONFIG_FILES = ("args.yaml", "config.yaml")


def render(report: Diagnosis, *, verbose: bool = False) -> str:
    """The report registered as ``report --format html``."""
    facts = report.report_facts
    run = report.run
    anchors = {c: c.anchor for c, _ in facts.excerpts} if facts else {}
    cited_by = _cited_by(report)
    template = template_environment().get_template("report.html.j2")
    return template.render(
        report=report,
        run_name=run.run_dir.name or str(run.run_dir),
        data=report_dict(report),
        considered=report.considered,
        facts=facts,
        cards=[_card(i, f, anchors, facts, cited_by, report.timeline) for i, f in enumerate(report.findings, 1)],
        unexplained=list(report.unexplained),
        plots=_plots(report),
        config=_config_view(facts, cited_by),
        events=_events(run),
        epochs_table=_epochs_table(run.epochs),
        excerpts=[{"citation": c, "excerpt": e} for c, e in facts.excerpts] if facts else [],
        verification_html=render_verification_html(report.verification) if report.verification else None,
        batch_grid=base64.b64encode(facts.batch_grid).decode("ascii") if facts and facts.batch_grid else None,
        versions=footer_versions(
            **{"rule pack": facts.rule_pack_version if facts else None,
               "timm era": facts.timm_era if facts else None,
               "schema": report.schema_version}),
        verbose=verbose,
    )


def _plots(report: Diagnosis) -> list[dict[str, Any]]:
    facts, run = report.report_facts, report.run
    chance = dict(facts.chance_levels) if facts else {}
    steps = run.steps if len(run.steps) else None
    plots = [
        ("metrics", "Epoch metrics", "Segments (thick lines), change points (dotted), finding epochs (shaded) and chance level (dashed).",
         metrics_svg(run.epochs, report.segments, report.findings, chance)),
        ("model-vs-ema", "Model vs EMA eval top-1", "timm validates both and reports the EMA's numbers.",
         model_vs_ema_svg(run.epochs, chance, report.findings)),
        ("lr", "Learning rate: logged vs configured", "Logged: what the run printed. Configured: what sched, warmup and lr imply.",
         lr_svg(facts.lr_logged if facts else None, facts.lr_configured if facts else None, steps)),
        ("step-loss", "Step-level train loss", "Every logged Train: line (long runs thinned, minima and maxima kept).",
         step_loss_svg(steps)),
        ("grad-norm", "Gradient norms", "Global and per layer group, per optimizer update (log scale); the runner logs them.",
         grad_norm_svg(getattr(run, "step_scalars", None))),
    ]
    return [{"id": pid, "title": title, "caption": caption, "svg": svg} for pid, title, caption, svg in plots if svg]


def _card(rank: int, finding, anchors: dict[Citation, str], facts, cited_by, timeline=None) -> dict[str, Any]:
    timeline = timeline or {}
    fix = finding.fix
    return {
        "rank": rank,
        "finding": finding,
        "severity": finding.severity.label,
        "evidence": [_linked(e.text, e.refs, anchors) for e in finding.evidence],
        "fix": None if fix is None else {
            "args": dict(fix.args), "note": fix.note, "safety": fix.safety, "command": fix.command,
            "diff": command_diff(facts.base_command if facts else None, fix.command),
        },
        "cites": (facts.cited_config.get(finding.rule_id, ()) if facts else ()),
        "visibility": timeline[finding.rule_id].describe() if finding.rule_id in timeline else "",
    }


def _linked(text: str, refs: Sequence[str], anchors: dict[Citation, str]) -> list[tuple[str, str, str | None]]:
    """``text`` as parts ``(kind, text, anchor)``: each citation label that has an excerpt becomes a link;
    a whole config file (``args.yaml``) links to the config table."""
    targets: list[tuple[str, str]] = []
    for citation in group(refs):
        if citation in anchors:
            targets.append((citation.label, anchors[citation]))
    for ref in refs:
        file = str(getattr(ref, "file", ref))
        if getattr(ref, "line", None) is None and file.rsplit("/", 1)[-1] in CONFIG_FILES:
            targets.append((file.rsplit("/", 1)[-1], "config"))
    parts: list[tuple[str, str, str | None]] = [("text", text, None)]
    for label, anchor in targets:
        parts = _split_on(parts, label, anchor)
    return parts


def _split_on(parts, label: str, anchor: str):
    out = []
    done = False
    for kind, text, target in parts:
        at = text.rfind(label) if kind == "text" and not done else -1
        if at < 0:
            out.append((kind, text, target))
            continue
        done = True
        if text[:at]:
            out.append(("text", text[:at], None))
        out.append(("cite", label, anchor))
        if text[at + len(label):]:
            out.append(("text", text[at + len(label):], None))
    return out


def command_diff(base: str | None, fixed: str | None) -> dict[str, list[tuple[str, str]]] | None:
    """The two command lines as flag groups (``--lr 0.1``), each marked ``same``, ``removed`` or ``added``."""
    if not fixed:
        return None
    new = flag_groups(fixed)
    if not base:
        return {"base": [], "fixed": [("same", g) for g in new]}
    old = flag_groups(base)
    return {
        "base": [("same" if g in new else "removed", g) for g in old],
        "fixed": [("same" if g in old else "added", g) for g in new],
    }


def flag_groups(command: str) -> list[str]:
    """``python train.py DATA`` as one group, then one group per option with its value(s)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command.split()
    groups: list[list[str]] = [[]]
    for word in words:
        if word.startswith("-") and not _is_number(word):
            groups.append([word])
        else:
            groups[-1].append(word)  # the program and its positional arguments, or a flag's value(s)
    return [" ".join(shlex.quote(w) for w in g) for g in groups if g]


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _cited_by(report: Diagnosis) -> dict[str, list[str]]:
    facts = report.report_facts
    out: dict[str, list[str]] = {}
    if facts is None:
        return out
    for finding in report.findings:
        for key in facts.cited_config.get(finding.rule_id, ()):
            out.setdefault(key, []).append(finding.cause)
    return out


def _config_view(facts, cited_by: dict[str, list[str]]) -> dict[str, list]:
    if facts is None:
        return {"main": [], "rest": []}
    main, rest = [], []
    for row in facts.config_rows:
        entry = {"row": row, "cited": cited_by.get(row.key, [])}
        (main if entry["cited"] or row.non_default else rest).append(entry)
    main.sort(key=lambda e: (not e["cited"], e["row"].key))
    return {"main": main, "rest": rest}


def _events(run) -> dict[str, Any]:
    events = [e for e in run.events if e.kind in TIMELINE_KINDS]
    last = max([int(run.epochs.index.max()) if run.n_epochs else 0] + [e.epoch or 0 for e in events]) or 1
    return {
        "entries": [{"event": e, "left": round(100.0 * (e.epoch or 0) / last, 2)} for e in events],
        "last": last,
    }


def _epochs_table(frame) -> dict:
    cols = list(frame.columns)
    rows = [[int(epoch)] + [_fmt(v) for v in values] for epoch, values in zip(frame.index, frame.to_numpy())]
    return {"columns": ["epoch", *cols], "rows": rows}


def _fmt(value) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)
